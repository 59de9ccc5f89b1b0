"""Issue 12 points 4 and 5 in real Chromium: reference library, PDF viewer, claim links.

The author adds a reference with its PDF from the module's edit page, comes back
with it ticked and saves, selects a claim in the claims panel and links it to the
reference (with a page), then submits. The medical reviewer sees the linked claim
with its reference in the review page's claims panel, and the numeric claim the
author left unlinked flagged; the reference's PDF opens in the viewer page.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from content_modules.library.models import ClaimLink, Reference
from tests.factories import make_module, pdf_bytes
from tests.review.helpers import task_for

from .helpers import console_errors, login, logout, screenshot, submit, wait_for, wait_for_css

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLAIM = "CardioZen reduced major cardiac events by 24% versus placebo."
UNLINKED = "Hospital stays were 30% shorter."
BODY = f"{CLAIM} It is taken once a day with food. {UNLINKED}"
CITATION = "Smith J et al. CardioZen outcomes trial. N Engl J Med 2025;392:101-112."


def _select_text(browser, selector: str, text: str) -> None:
    """Select ``text`` inside the element as a person dragging the mouse would, then release."""
    browser.execute_script(
        """
        const el = document.querySelector(arguments[0]);
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        let node, at = -1;
        while ((node = walker.nextNode())) {
          at = node.data.indexOf(arguments[1]);
          if (at >= 0) break;
        }
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + arguments[1].length);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        el.dispatchEvent(new MouseEvent("mouseup", {bubbles: true}));
        """,
        selector,
        text,
    )


def test_author_links_a_claim_to_a_pdf_reference_and_the_medical_reviewer_sees_it(
    browser, live_server, author, medical, vocabulary, tmp_path, warm_embedding_model
):
    version = make_module(
        author,
        title="Outcomes email",
        headline="A new option",
        body=BODY,
        key_message="Once daily.",
    )
    module = version.module
    pdf_file = tmp_path / "smith2025.pdf"
    pdf_file.write_bytes(pdf_bytes())

    # The author opens the edit page and adds a reference with its PDF to the library.
    login(browser, live_server, author)
    browser.get(f"{live_server.url}/library/modules/{module.pk}/edit/")
    submit(browser, browser.find_element(By.ID, "add-reference-link"))
    assert browser.find_element(By.ID, "attach-notice").is_displayed()
    browser.find_element(By.ID, "id_citation").send_keys(CITATION)
    browser.find_element(By.ID, "id_doi").send_keys("https://doi.org/10.1056/NEJMoa2034577")
    browser.find_element(By.ID, "id_pdf").send_keys(str(pdf_file))
    submit(browser, browser.find_element(By.ID, "reference-submit"))

    # Back on the edit form with the reference ticked: saving attaches it.
    reference = Reference.objects.get()
    assert reference.doi == "10.1056/NEJMoa2034577" and reference.pdf
    assert f"/library/modules/{module.pk}/edit/" in browser.current_url
    box = browser.find_element(By.CSS_SELECTOR, f"input[name=references][value='{reference.pk}']")
    assert box.is_selected()
    browser.find_element(By.ID, "reference-filter").send_keys("outcomes trial")
    assert box.is_displayed()
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))
    assert list(module.versions.get(number=1).references.all()) == [reference]

    # Both numeric claims are flagged until one is linked.
    browser.get(f"{live_server.url}/library/modules/{module.pk}/edit/")
    flags = wait_for_css(browser, "#claim-flags").text
    assert CLAIM in flags and UNLINKED in flags

    # The author selects the claim in the panel and links it, with the page.
    _select_text(browser, ".claim-text[data-claim-field=body]", CLAIM)
    wait_for(browser, lambda b: CLAIM in b.find_element(By.ID, "claim-selection").text)
    browser.find_element(By.ID, "claim-locator").send_keys("p. 4, Table 2")
    submit(browser, browser.find_element(By.ID, "claim-link-submit"))
    assert "Linked" in wait_for_css(browser, ".messages .success").text
    link = ClaimLink.objects.get()
    assert (link.quoted_text, link.reference_id, link.locator) == (
        CLAIM,
        reference.pk,
        "p. 4, Table 2",
    )
    assert browser.find_element(By.CSS_SELECTOR, ".claim-text mark.claim-linked").text == CLAIM
    assert CLAIM not in browser.find_element(By.ID, "claim-flags").text
    screenshot(browser, "claims-edit-page")

    # The author submits the module for review.
    browser.get(f"{live_server.url}/library/modules/{module.pk}/")
    submit(browser, browser.find_element(By.ID, "submit-for-review"))
    assert console_errors(browser) == []
    logout(browser)

    # The medical reviewer sees the linked claim with its reference, and the unlinked one.
    login(browser, live_server, medical)
    task = task_for(module.versions.get(number=1), "medical")
    browser.get(f"{live_server.url}/review/tasks/{task.pk}/")
    links = wait_for_css(browser, "#claim-links").text
    assert CLAIM in links and CITATION[:60] in links and "p. 4, Table 2" in links
    flags = browser.find_element(By.ID, "claim-flags").text
    assert UNLINKED in flags and "states a percentage" in flags and CLAIM not in flags
    screenshot(browser, "claims-review-page")

    # The reference's PDF opens in the viewer page.
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#claim-links a[href$='#pdf-viewer']"))
    frame = wait_for_css(browser, "#pdf-frame")
    assert frame.get_attribute("src").endswith(f"/library/references/{reference.pk}/pdf/inline/")
    assert browser.find_element(By.ID, "reference-citation").text == CITATION
    screenshot(browser, "reference-viewer")
    assert console_errors(browser) == []
