"""An author works in real Chromium: create with an image, find, view, edit; see errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from content_modules.library.models import ModuleVersion, TagKind, VersionStatus
from tests.factories import force_status, make_module, tag

from .helpers import console_errors, login, logout, screenshot, submit, wait_for, wait_for_css

pytestmark = pytest.mark.browser


@pytest.fixture
def png_file(tmp_path):
    """A real PNG on disk, as an author would pick it in the file dialog."""
    path = tmp_path / "heart-outcomes.png"
    image = Image.new("RGB", (640, 360), (235, 242, 252))
    for x in range(80, 560):
        for y in range(150, 210):
            image.putpixel((x, y), (31, 95, 191))
    image.save(path, "PNG")
    return path


def _fill(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def _check(browser, group: str, label: str) -> None:
    browser.find_element(
        By.XPATH, f"//div[@id='field-{group}']//label[normalize-space()='{label}']/input"
    ).click()


def _set_date(browser, field_id: str, value: str) -> None:
    # Typing into a date input depends on the browser's locale; setting the value does not.
    browser.execute_script(
        "arguments[0].value = arguments[1];", browser.find_element(By.ID, field_id), value
    )


def _image_loaded(browser, selector: str) -> bool:
    return browser.execute_script(
        "const img = document.querySelector(arguments[0]);"
        "return !!img && img.complete && img.naturalWidth > 0;",
        selector,
    )


def test_author_creates_finds_views_and_edits_a_module_with_an_image(
    browser, live_server, author, vocabulary, png_file, warm_embedding_model
):
    # Given an author and another module with a different message
    make_module(author, title="Safety module", message=tag(TagKind.MESSAGE, "safety"))
    login(browser, live_server, author)

    # When they fill in the create form with an image
    browser.get(live_server.url + reverse("library:module_create"))
    wait_for_css(browser, "form.module-form")
    _fill(browser, "id_title", "Outcomes infographic")
    _fill(browser, "id_headline", "Fewer heart attacks with CardioZen")
    _fill(
        browser,
        "id_body",
        "In the pivotal trial, patients on CardioZen had 24% fewer major cardiac events "
        "than patients on placebo over three years.",
    )
    _fill(browser, "id_key_message", "CardioZen reduced major cardiac events by 24%.")
    _fill(browser, "id_call_to_action", "Read the full study")
    Select(browser.find_element(By.ID, "id_brand")).select_by_visible_text("CardioZen")
    Select(browser.find_element(By.ID, "id_market")).select_by_visible_text("UK")
    Select(browser.find_element(By.ID, "id_message")).select_by_visible_text("Efficacy")
    _check(browser, "themes", "Outcomes")
    Select(browser.find_element(By.ID, "id_tonality")).select_by_visible_text("Empathetic")
    Select(browser.find_element(By.ID, "id_format")).select_by_visible_text("Infographic")
    _check(browser, "channels", "Email")
    _check(browser, "channels", "Web")
    _set_date(browser, "id_expires_on", (timezone.localdate() + timedelta(days=300)).isoformat())
    browser.find_element(By.ID, "id_image").send_keys(str(png_file))

    # Then the chosen image is previewed before saving, and the body is counted
    wait_for(browser, lambda b: _image_loaded(b, "#image-preview"))
    assert "heart-outcomes.png" in browser.find_element(By.ID, "image-preview-caption").text
    assert "of 5,000 characters" in browser.find_element(By.ID, "body-count").text
    screenshot(browser, "library-module-form-filled")

    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))

    # Then the detail page shows the module with its processed image
    wait_for_css(browser, ".messages .success")
    assert (
        "created as a draft (version 1)" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    )
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Outcomes infographic"
    wait_for(browser, lambda b: _image_loaded(b, ".hcp-preview img"))
    preview = browser.find_element(By.CSS_SELECTOR, ".hcp-preview").text
    assert "Fewer heart attacks with CardioZen" in preview
    assert "Read the full study" in preview
    detail_url = browser.current_url
    screenshot(browser, "library-module-detail")

    # And the library list, filtered by a tag, finds it and not the other module
    browser.get(live_server.url + reverse("library:module_list"))
    Select(browser.find_element(By.ID, "id_f_message")).select_by_visible_text("Efficacy")
    Select(browser.find_element(By.ID, "id_f_format")).select_by_visible_text("Infographic")
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".search-row button[type=submit]"))
    titles = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "td.title-cell a")]
    assert titles == ["Outcomes infographic"]
    assert "message=efficacy" in browser.current_url
    browser.get(live_server.url + reverse("library:module_list"))
    screenshot(browser, "library-module-list")
    browser.get(live_server.url + reverse("library:module_list") + "?message=efficacy")
    submit(browser, browser.find_element(By.LINK_TEXT, "Outcomes infographic"))
    assert browser.current_url == detail_url

    # When version 1 is approved and the author edits the module
    version = ModuleVersion.objects.get(title="Outcomes infographic")
    force_status(version, VersionStatus.APPROVED)
    browser.refresh()
    submit(browser, browser.find_element(By.LINK_TEXT, "Edit"))
    notice = wait_for_css(browser, "#edit-notice").text
    assert "Saving creates version 2 as a draft" in notice
    assert _image_loaded(browser, "#current-image")
    screenshot(browser, "library-module-edit")
    _fill(browser, "id_headline", "A quarter fewer heart attacks with CardioZen")
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))

    # Then the history shows the new draft next to the approved version
    assert "Saved as draft version 2" in wait_for_css(browser, ".messages .success").text
    rows = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")[:2]]
        for row in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    ]
    assert rows == [["Version 2", "Draft"], ["Version 1", "Approved"]]
    assert browser.find_element(By.ID, "approved-differs").is_displayed()
    assert "A quarter fewer" in browser.find_element(By.CSS_SELECTOR, ".hcp-preview").text
    screenshot(browser, "library-module-detail-v2")

    # And the version 1 page still shows what was approved
    submit(browser, browser.find_element(By.LINK_TEXT, "Version 1"))
    assert (
        "Fewer heart attacks with CardioZen"
        in browser.find_element(By.CSS_SELECTOR, "h2.preview-headline").text
    )
    screenshot(browser, "library-version-detail")

    # No page broke the Content-Security-Policy or threw a script error
    assert console_errors(browser) == []

    # Logging out ends the session: the library asks for a login again
    logout(browser)
    assert "/accounts/login" in browser.current_url
    browser.get(live_server.url + reverse("library:module_list"))
    assert "/accounts/login" in browser.current_url


def test_validation_errors_are_shown_next_to_their_fields(
    browser, live_server, author, vocabulary, settings, tmp_path
):
    login(browser, live_server, author)
    browser.get(live_server.url + reverse("library:module_create"))
    wait_for_css(browser, "form.module-form")
    _fill(browser, "id_title", "Incomplete module")
    _fill(browser, "id_body", "x" * 5001)
    _set_date(browser, "id_expires_on", (timezone.localdate() - timedelta(days=3)).isoformat())
    not_an_image = tmp_path / "scan.png"
    not_an_image.write_text("this is a text file, not a PNG")
    browser.find_element(By.ID, "id_image").send_keys(str(not_an_image))
    counter = browser.find_element(By.ID, "body-count")
    assert "over" in counter.get_attribute("class")

    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))

    summary = wait_for_css(browser, "#error-summary")
    assert "Please correct the following" in summary.text
    # Keyboard and screen-reader users start from the list of problems.
    assert browser.switch_to.active_element.get_attribute("id") == "error-summary"
    expected = {
        "headline": "Enter a headline.",
        "themes": "Choose at least one theme.",
        "channels": "Choose at least one channel.",
        "expires_on": "is in the past",
        "body": "The body is 5,001 characters; the limit is 5,000.",
        "image": "not an image",
    }
    for field, text in expected.items():
        error = browser.find_element(By.CSS_SELECTOR, f"#field-{field} .errorlist")
        assert text in error.text, field
        assert error.is_displayed()
    # The inputs point at their errors for screen readers.
    headline = browser.find_element(By.ID, "id_headline")
    assert headline.get_attribute("aria-invalid") == "true"
    assert "id_headline_error" in headline.get_attribute("aria-describedby")
    # What the author typed is kept.
    assert browser.find_element(By.ID, "id_title").get_attribute("value") == "Incomplete module"
    # The summary links jump to the fields.
    summary.find_element(By.CSS_SELECTOR, "a[href='#field-themes']").click()
    assert browser.current_url.endswith("#field-themes")
    screenshot(browser, "library-module-form-errors")
    assert ModuleVersion.objects.count() == 0
    # The page answers 400 on purpose (Chromium logs that); nothing else may go wrong.
    assert console_errors(browser, allow=("status of 400 (Bad Request)",)) == []
