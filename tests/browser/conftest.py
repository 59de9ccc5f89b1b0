"""Browser-test harness: Debian's Chromium driven by Selenium against pytest-django's live_server.

How to write a browser test (any app)::

    import pytest
    from tests.browser.helpers import login, wait_for_css, submit, screenshot

    pytestmark = pytest.mark.browser

    def test_reviewer_sees_queue(browser, live_server, medical):
        login(browser, live_server, medical)
        browser.get(live_server.url + "/review/")
        heading = wait_for_css(browser, "h1")
        assert heading.text == "Review queue"
        screenshot(browser, "review-queue")  # test-artifacts/review-queue.png, to look at

What the harness gives:

- ``browser``: a fresh headless Chromium per test (its own profile folder in
  tmp), already pointed at nothing; requesting it also starts ``live_server``
  (so the test runs with a transactional database that the server thread sees;
  ``tests/conftest.py`` puts back the data migrations' rows before each test).
  On a bare machine without Chromium the test skips; with
  ``CONTENTAPP_REQUIRE_SERVICES=1`` (CI) it fails instead.
- ``warm_embedding_model``: request it in a test that saves modules through
  the browser, so the first model load does not happen inside a page load.
- On a failing test, a screenshot and the page source are saved to
  ``test-artifacts/<test name>.png`` / ``.html`` (``TEST_ARTIFACTS_DIR`` overrides).
- Helpers in ``tests/browser/helpers.py``: ``login``, ``logout``, ``wait_for``, ``wait_for_css``,
  ``wait_for_text``, ``submit`` (click and wait for the next page),
  ``screenshot``, ``console_errors`` (CSP violations and JS errors).

Selenium never downloads anything: the Chromium binary and chromedriver are
given explicitly, so selenium-manager is not run.
"""

from __future__ import annotations

import re

import pytest

from tests.services import CHROMEDRIVER, CHROMIUM, require_chromium

from .helpers import ARTIFACTS

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,900",
    "--lang=en-GB",
)


@pytest.fixture
def browser(live_server, tmp_path):
    """A headless Chromium (Selenium WebDriver) for one test, next to a running live_server.

    live_server needs a transactional database, which is flushed after each
    test; tests/conftest.py restores what the data migrations created (role
    groups, channels) before every transactional test.
    """
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # Keep the console so tests can assert no CSP violation or script error happened.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.live_server_url = live_server.url
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def warm_embedding_model():
    """Load torch and the embedding model before the live server saves a module.

    Saving a module embeds it (an eager Celery task without Redis); the first
    model load would otherwise happen inside the live server's request and, on
    a busy machine, can outlast the browser's page-load timeout.
    """
    from content_modules.affinity.embeddings import encode

    encode(["warm-up"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Save a screenshot and the page source of a failing browser test."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    driver = getattr(item, "funcargs", {}).get("browser")
    if driver is None:
        return
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"FAILED-{name}.png"))
        (ARTIFACTS / f"FAILED-{name}.html").write_text(driver.page_source, encoding="utf-8")
        report.sections.append(
            ("browser artifacts", f"{ARTIFACTS}/FAILED-{name}.png (.html), at {driver.current_url}")
        )
    except Exception as exc:  # The browser may be the thing that broke; keep the real failure.
        report.sections.append(("browser artifacts", f"could not save: {exc!r}"))


@pytest.fixture(autouse=True)
def _many_sign_ins_from_one_browser(settings):
    """Every person in a browser test signs in from 127.0.0.1: the per-address login
    throttle (10/min by default) is for attackers, and a fast run of the review flow
    signs in eleven times within a minute. The throttle has its own tests."""
    settings.LOGIN_THROTTLE_RATE = "1000/min"
