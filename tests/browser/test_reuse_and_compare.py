"""In Chromium: the reuse finder updates as the author types; two versions side by side."""

from __future__ import annotations

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By

from content_modules.affinity import embeddings
from content_modules.library import services
from content_modules.library.models import VersionStatus
from tests.factories import force_status, make_module

from .helpers import console_errors, login, screenshot, wait_for, wait_for_css, wait_for_text

pytestmark = pytest.mark.browser

APPROVED = "CardioZen reduced major adverse cardiac events by 24% versus placebo."


def _type(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def test_typing_a_claim_shows_similar_approved_content_and_flags_other_figures(
    browser, live_server, author, embedding_model
):
    approved = make_module(
        author, headline="Fewer heart attacks and strokes", body="", key_message=APPROVED
    )
    force_status(approved, VersionStatus.APPROVED)
    embeddings.embed_versions([approved.pk])
    login(browser, live_server, author)

    browser.get(live_server.url + reverse("library:module_create"))
    wait_for_css(browser, "#reuse-idle")
    submits_before = browser.execute_script(
        "return performance.getEntriesByType('navigation').length"
    )

    # The author types a claim that differs from the approved one only in its number.
    _type(browser, "id_headline", "Fewer heart attacks and strokes")
    _type(
        browser,
        "id_key_message",
        "CardioZen reduced major adverse cardiac events by 30% versus placebo.",
    )

    wait_for_text(browser, "New claim: 30% vs approved 24%", "#reuse-results")
    flag = browser.find_element(By.CSS_SELECTOR, '#reuse-results [data-novelty="numbers_differ"]')
    assert "New claim: 30% vs approved 24%" in flag.text
    item = browser.find_element(
        By.CSS_SELECTOR, f'#reuse-results li[data-module="{approved.module_id}"]'
    )
    assert item.get_attribute("data-new-claim") == "true"
    assert "new claim: 30% vs approved 24%" in item.text
    # Nothing was submitted: still the same document, on the create page.
    assert browser.current_url.endswith(reverse("library:module_create"))
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == (
        submits_before
    )
    screenshot(browser, "reuse-finder-numbers-differ")

    # Putting the approved figure back makes it the known approved claim.
    _type(
        browser,
        "id_key_message",
        "CardioZen reduced major adverse cardiac events by 24% versus placebo.",
    )
    wait_for_text(browser, "Close to an approved claim", "#reuse-results")
    known = browser.find_element(By.CSS_SELECTOR, '#reuse-results [data-novelty="known"]')
    assert "Close to an approved claim" in known.text
    assert not browser.find_elements(By.CSS_SELECTOR, "#reuse-results li[data-new-claim]")

    # Clearing the text puts the panel back to its empty state.
    for field in ("id_headline", "id_key_message"):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(" \b")
    wait_for_text(browser, "show here as you type", "#reuse-results")
    assert console_errors(browser) == []


def test_edit_page_updates_the_panel_as_the_author_types(
    browser, live_server, author, embedding_model
):
    approved = make_module(author, headline="", body="", key_message=APPROVED)
    force_status(approved, VersionStatus.APPROVED)
    embeddings.embed_versions([approved.pk])
    draft = make_module(
        author, headline="", body="", key_message="Once-daily dosing with or without food."
    )
    login(browser, live_server, author)

    browser.get(live_server.url + reverse("library:module_edit", args=[draft.module_id]))
    wait_for_css(browser, "#reuse-results")
    _type(
        browser,
        "id_key_message",
        "CardioZen reduced major adverse cardiac events by 30% versus placebo.",
    )

    wait_for_text(browser, "New claim: 30% vs approved 24%", "#reuse-results")
    assert browser.find_element(By.CSS_SELECTOR, '#reuse-results [data-novelty="numbers_differ"]')
    assert console_errors(browser) == []


def test_compare_page_shows_two_versions_side_by_side(browser, live_server, author, medical):
    v1 = make_module(author, headline="Fewer heart attacks", key_message=APPROVED)
    force_status(v1, VersionStatus.APPROVED)
    services.module_edit(
        actor=author,
        module=v1.module,
        changes={
            "key_message": "CardioZen reduced major adverse cardiac events by 30% versus placebo."
        },
    )
    login(browser, live_server, medical)

    # From the module page's version picker
    browser.get(live_server.url + reverse("library:module_detail", args=[v1.module_id]))
    picker = wait_for_css(browser, "#compare-a-history")
    assert picker.get_attribute("value") == "1"
    browser.execute_script("window.__pageBeforeSubmit = true;")
    picker.find_element(By.XPATH, "ancestor::form//button[@type='submit']").click()
    table = wait_for_css(browser, "#compare-table")

    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th[data-side]")]
    assert headers[0].lower().startswith("version 1")
    assert headers[1].lower().startswith("version 2")
    row = table.find_element(By.CSS_SELECTOR, 'tr[data-field="key_message"]')
    a, b = (row.find_element(By.CSS_SELECTOR, f'td[data-side="{s}"]') for s in "ab")
    assert "by 24% versus placebo" in a.text
    assert "by 30% versus placebo" in b.text
    assert "changed" in row.get_attribute("class")
    # Side by side: the two cells share a row on screen.
    assert a.location["y"] == b.location["y"] and a.location["x"] < b.location["x"]
    assert "changed" not in table.find_element(
        By.CSS_SELECTOR, 'tr[data-field="headline"]'
    ).get_attribute("class")
    wait_for(browser, lambda br: "compare" in br.current_url)
    screenshot(browser, "version-compare")
    assert console_errors(browser) == []
