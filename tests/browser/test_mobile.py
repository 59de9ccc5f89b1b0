"""A phone-sized screen (390 px): no page scrolls sideways, the menu folds, links stay visible.

Every role signs in and walks its main pages at 390 x 844 (an iPhone 12-14
viewport). On each page: the document is no wider than the window, the top
bar's menu is folded behind its button and opens on a tap, and every link the
page shows can be seen (its colour differs from the background behind it and
it lies inside the window unless it sits in a box that scrolls on its own).
"""

from __future__ import annotations

from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.library.images import process_image_upload, store_image_asset
from content_modules.library.models import ModuleVersion
from tests.factories import make_module
from tests.review.helpers import submit as submit_version
from tests.review.helpers import task_for

from .helpers import console_errors, login, logout, screenshot, submit, wait_for, wait_for_css

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}

# Where each link is, what colour it is and what is behind it, in one round trip.
LINK_REPORT = """
const scrollsOnItsOwn = (el) => {
  for (let n = el.parentElement; n && n !== document.body; n = n.parentElement) {
    const o = getComputedStyle(n).overflowX;
    if (o === 'auto' || o === 'scroll') return true;
  }
  return false;
};
const background = (el) => {
  for (let n = el; n; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (c && c !== 'transparent' && !/rgba\\(.*, 0\\)$/.test(c)) return c;
  }
  return getComputedStyle(document.documentElement).backgroundColor || 'rgb(255, 255, 255)';
};
return [...document.querySelectorAll('a[href], button')]
  .filter((a) => a.getClientRects().length && getComputedStyle(a).visibility !== 'hidden'
    && !a.closest('.skip-link') && !a.classList.contains('skip-link'))
  .map((a) => {
    const r = a.getBoundingClientRect();
    return {text: a.textContent.trim().slice(0, 40), color: getComputedStyle(a).color,
            background: background(a), left: r.left, right: r.right,
            inScroller: scrollsOnItsOwn(a)};
  });
"""


def _phone(browser) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)


def _desktop_logout(browser) -> None:
    """Back to the desktop window (where the Log out button is not folded away) and log out."""
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    logout(browser)


def _png() -> SimpleUploadedFile:
    buffer = BytesIO()
    Image.new("RGB", (1200, 600), (31, 95, 191)).save(buffer, "PNG")
    return SimpleUploadedFile("wide.png", buffer.getvalue(), content_type="image/png")


def _module_with_image(author, **overrides) -> ModuleVersion:
    with transaction.atomic():
        asset = store_image_asset(actor=author, processed=process_image_upload(_png()))
    # A long unbroken word and a long title: the kind of content that widens pages.
    overrides.setdefault("title", "Outcomes infographic for cardiologists in the UK market")
    return make_module(author, image=asset, **overrides)


def _assert_fits_the_phone(browser, page: str) -> None:
    """The page does not scroll sideways, the menu folds and opens, every link is visible."""
    wait_for(browser, lambda b: b.execute_script("return document.readyState") == "complete")
    width = browser.execute_script("return window.innerWidth")
    assert width == 390, f"{page}: the viewport is {width} px wide, not 390"
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page}: the page is {scroll_width} px wide at {width} px"

    toggle = browser.find_element(By.ID, "nav-toggle")
    menu = browser.find_element(By.ID, "site-menu")
    assert toggle.is_displayed(), f"{page}: no menu button at 390 px"
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not menu.is_displayed(), f"{page}: the menu is not folded at 390 px"
    toggle.click()
    wait_for(browser, lambda b: menu.is_displayed())
    assert toggle.get_attribute("aria-expanded") == "true"
    nav_links = menu.find_elements(By.CSS_SELECTOR, "nav a")
    assert nav_links and all(a.is_displayed() for a in nav_links), f"{page}: hidden nav links"
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page}: the open menu makes the page {scroll_width} px wide"

    for link in browser.execute_script(LINK_REPORT):
        where = f"{page}: link {link['text']!r}"
        assert link["color"] != link["background"], f"{where} is {link['color']} on the same"
        if not link["inScroller"]:
            assert link["left"] >= -1 and link["right"] <= width + 1, f"{where} is off-screen"

    toggle.click()
    wait_for(browser, lambda b: not menu.is_displayed())
    assert toggle.get_attribute("aria-expanded") == "false"
    assert console_errors(browser) == [], f"{page}: console errors"


def _visit(browser, live_server, path: str, name: str) -> None:
    browser.get(live_server.url + path)
    _phone(browser)
    _assert_fits_the_phone(browser, name)
    screenshot(browser, f"mobile-{name}")


@pytest.fixture
def review_world(author, medical, legal, regulatory, vocabulary):
    """A module in review with an image, a second one approved-looking in the list, an HCP."""
    version = _module_with_image(
        author,
        body="In the pivotal trial (NCT0123456789012345678901234567890), patients on "
        "CardioZen had 24% fewer major cardiac events than patients on placebo.",
    )
    make_module(author, title="Safety module for the library list")
    review = submit_version(version)
    hcp = HCP.objects.create(
        external_id="HCP-CARDIOLOGY-LONDON-000123456789",
        specialty="cardiology",
        segment="digital-first",
        region="UK-London",
        preferred_channel="rep_email",
    )
    EngagementEvent.objects.create(
        event_id="6b1e4c1a-3b7e-4f6e-9d51-8f7e2a1b0c01",
        hcp=hcp,
        module=version.module,
        version=version,
        type="opened",
        occurred_at=timezone.now(),
        channel="rep_email",
    )
    return {"version": version, "review": review, "hcp": hcp}


def test_every_role_reads_its_main_pages_on_a_phone_without_sideways_scrolling(
    browser, live_server, author, medical, admin_user, review_world
):
    version = review_world["version"]
    module = version.module
    hcp = review_world["hcp"]
    task = task_for(version, "medical")
    library_pages = [
        (reverse("library:module_list"), "library-list"),
        (reverse("library:module_detail", args=[module.pk]), "module-detail"),
        (reverse("library:version_detail", args=[module.pk, version.number]), "version-detail"),
        (reverse("affinity:hcp_list"), "hcp-list"),
        (reverse("affinity:hcp_detail", args=[hcp.external_id]), "hcp-detail"),
        (reverse("affinity:model"), "model"),
    ]

    # The author: landing page, library, the new-module form, references, HCP insight
    login(browser, live_server, author)
    _phone(browser)
    _assert_fits_the_phone(browser, "author-landing")
    author_pages = [
        (reverse("library:module_create"), "new-module"),
        (reverse("library:reference_list"), "references"),
        (reverse("library:version_compare", args=[module.pk]), "compare"),
        *library_pages,
    ]
    for path, name in author_pages:
        _visit(browser, live_server, path, f"author-{name}")
    _desktop_logout(browser)

    # A reviewer: the queue, the review task, the history and the dashboard
    login(browser, live_server, medical)
    _phone(browser)
    _assert_fits_the_phone(browser, "reviewer-landing")
    reviewer_pages = [
        (reverse("review:queue"), "queue"),
        (reverse("review:task", args=[task.pk]), "review-task"),
        (reverse("review:module_history", args=[module.pk]), "history"),
        (reverse("review:dashboard"), "dashboard"),
        *library_pages,
    ]
    for path, name in reviewer_pages:
        _visit(browser, live_server, path, f"reviewer-{name}")
    _desktop_logout(browser)

    # An admin: the same pages plus the admin site's index (Django's own layout)
    login(browser, live_server, admin_user)
    for path, name in reviewer_pages[:1] + reviewer_pages[3:]:
        _visit(browser, live_server, path, f"admin-{name}")
    browser.get(live_server.url + reverse("admin:index"))
    _phone(browser)
    width = browser.execute_script("return window.innerWidth")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    screenshot(browser, "mobile-admin-index")


def test_without_javascript_the_menu_wraps_inside_the_phone(
    browser, live_server, author, admin_user, vocabulary
):
    # Given an admin (the longest menu) on a phone with JavaScript switched off
    login(browser, live_server, admin_user)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.get(live_server.url + reverse("library:module_list"))
    assert browser.find_element(By.ID, "topbar").get_attribute("class") == "topbar"
    _phone(browser)
    # Then there is no button to press, every menu link shows, and nothing overflows
    assert not browser.find_element(By.ID, "nav-toggle").is_displayed()
    links = browser.find_elements(By.CSS_SELECTOR, "#site-menu nav a")
    assert len(links) >= 5 and all(a.is_displayed() for a in links)
    for a in links:
        rect = a.rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 391, a.text
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )


def test_reviewer_skips_straight_to_the_decision_form(browser, live_server, medical, review_world):
    # Given a medical reviewer on the review page of a task in their queue
    task = task_for(review_world["version"], "medical")
    login(browser, live_server, medical)
    browser.get(live_server.url + reverse("review:task", args=[task.pk]))
    wait_for_css(browser, "#decision-form")
    body = browser.find_element(By.TAG_NAME, "body")
    # When they press Tab twice from the top of the page
    body.send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.get_attribute("href").endswith("#main")
    first.send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    # Then the second stop is a visible "Skip to the decision form" link
    assert skip.text == "Skip to the decision form"
    assert skip.get_attribute("href").endswith("#decision-form")
    assert skip.is_displayed() and skip.rect["x"] >= 0
    # And following it puts the focus on the form, whose next stop is the first decision
    skip.send_keys(Keys.ENTER)
    wait_for(browser, lambda b: b.switch_to.active_element.get_attribute("id") == "decision-form")
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("name") == "decision"
    assert console_errors(browser) == []


def test_author_sees_no_skip_to_decision_link_on_a_task_they_cannot_decide(
    browser, live_server, author, review_world
):
    task = task_for(review_world["version"], "medical")
    login(browser, live_server, author)
    browser.get(live_server.url + reverse("review:task", args=[task.pk]))
    wait_for_css(browser, "h1")
    assert browser.find_elements(By.ID, "skip-to-decision") == []
    assert browser.find_elements(By.ID, "decision-form") == []


def test_author_writes_alt_text_and_every_image_of_the_module_says_it(
    browser, live_server, author, medical, vocabulary, warm_embedding_model
):
    # Given a module with an image and no alt text
    version = _module_with_image(author, headline="Fewer heart attacks with CardioZen")
    module = version.module
    login(browser, live_server, author)

    # Then its images say the headline
    browser.get(live_server.url + reverse("library:module_detail", args=[module.pk]))
    image = wait_for_css(browser, "img.preview-image")
    assert image.get_attribute("alt") == "Fewer heart attacks with CardioZen"

    # When the author opens the edit form, the alt text field is empty and says why
    browser.get(live_server.url + reverse("library:module_edit", args=[module.pk]))
    field = wait_for_css(browser, "#id_image_alt")
    assert field.get_attribute("value") == ""
    help_text = browser.find_element(By.ID, "id_image_alt_helptext").text
    assert "headline is used" in help_text
    assert browser.find_element(By.ID, "current-image").get_attribute("alt") == (
        "Fewer heart attacks with CardioZen"
    )
    # And writes one and saves
    field.send_keys("Bar chart: 24% fewer cardiac events than placebo <b>")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form.module-form button[type=submit]"))

    # Then the stored version carries it, and every image of the module says it, escaped
    version.refresh_from_db()
    assert version.image_alt == "Bar chart: 24% fewer cardiac events than placebo <b>"
    alt = "Bar chart: 24% fewer cardiac events than placebo <b>"
    browser.get(live_server.url + reverse("library:module_detail", args=[module.pk]))
    assert wait_for_css(browser, "img.preview-image").get_attribute("alt") == alt
    browser.get(live_server.url + reverse("library:module_edit", args=[module.pk]))
    assert wait_for_css(browser, "#id_image_alt").get_attribute("value") == alt
    assert browser.find_element(By.ID, "current-image").get_attribute("alt") == alt

    # And the reviewer's email and web previews say it too
    submit_version(version)
    logout(browser)
    login(browser, live_server, medical)
    browser.get(live_server.url + reverse("review:task", args=[task_for(version, "medical").pk]))
    wait_for_css(browser, "img.email-image")
    alts = [i.get_attribute("alt") for i in browser.find_elements(By.CSS_SELECTOR, "main img")]
    assert alts and all(a == alt for a in alts)
