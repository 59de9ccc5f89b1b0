"""Helpers for browser tests: waiting, logging in, submitting, screenshots, console errors.

Import them in a browser test: ``from tests.browser.helpers import login, submit, ...``.
The ``browser`` fixture and the failure-artifact hook live in ``conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.urls import reverse

from tests.factories import PASSWORD

ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "test-artifacts")
)
DEFAULT_TIMEOUT = float(os.environ.get("BROWSER_TIMEOUT", "15"))


def wait_for(browser, condition: Callable[[Any], Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Wait until ``condition(browser)`` is truthy and return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def wait_for_css(browser, selector: str, timeout: float = DEFAULT_TIMEOUT, visible: bool = True):
    """Wait for an element matching a CSS selector (visible by default) and return it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    locator = (By.CSS_SELECTOR, selector)
    check = ec.visibility_of_element_located if visible else ec.presence_of_element_located
    return wait_for(browser, check(locator), timeout)


def wait_for_text(browser, text: str, selector: str = "body", timeout: float = DEFAULT_TIMEOUT):
    """Wait until ``text`` appears inside the element matching ``selector``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text), timeout)


def _new_document_loaded(browser) -> bool:
    from selenium.common.exceptions import WebDriverException

    try:
        return browser.execute_script(
            "return window.__pageBeforeSubmit !== true && document.readyState === 'complete';"
        )
    except WebDriverException:  # The old document is going away mid-call: not yet.
        return False


def submit(browser, element, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Click a submit button (or link) and wait until the next page has fully loaded.

    The current document is marked first; only a document without the mark
    counts as the next page. Waiting for the old <html> to go stale alone can
    return while a redirect is still in flight, so a following ``browser.get``
    would race with it.
    """
    browser.execute_script("window.__pageBeforeSubmit = true;")
    element.click()
    wait_for(browser, _new_document_loaded, timeout)


def login(browser, live_server, user, password: str = PASSWORD) -> None:
    """Log in through the real login form and wait for the page it leads to."""
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + reverse("accounts:login"))
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys(password)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert "/accounts/login" not in browser.current_url, "login failed: still on the login page"


def logout(browser) -> None:
    """Log out with the button in the top bar."""
    from selenium.webdriver.common.by import By

    submit(browser, browser.find_element(By.CSS_SELECTOR, "form.logout button"))


def screenshot(browser, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/<name>.png for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    width = browser.execute_script("return document.documentElement.scrollWidth")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    original = browser.get_window_size()
    browser.execute_script("window.scrollTo(0, 0)")
    browser.set_window_size(max(width, original["width"]), max(height + 120, original["height"]))
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(original["width"], original["height"])
    return path


def console_errors(browser, allow: tuple[str, ...] = ()) -> list[str]:
    """Severe console messages since the last call: CSP violations, script errors, 404s.

    ``allow`` lists substrings of messages a test expects, e.g. the "400 (Bad
    Request)" Chromium logs when a form page is answered with its errors.
    """
    messages = [e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    return [m for m in messages if not any(a in m for a in allow)]
