"""Issue 3 point 13 in real Chromium: create, submit, annotate, request changes, revise, sign.

One module goes the whole way through the browser: the author creates and
submits it, the legal reviewer selects a span of the preview, comments on it
and requests changes, the author revises and resubmits, the three reviewers
sign (the medical reviewer checks the reference), and the module is approved
and served.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from content_modules.accounts.models import AuthFailure
from content_modules.library.models import Module, ModuleVersion, Reference, VersionStatus
from content_modules.review.models import Annotation, Signature, TaskStatus
from tests.factories import PASSWORD, api_client

from .helpers import (
    console_errors,
    login,
    logout,
    screenshot,
    submit,
    wait_for,
    wait_for_css,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY_V1 = (
    "In the pivotal trial, patients on CardioZen had the best outcomes ever seen "
    "in heart failure over three years."
)
SPAN = "the best outcomes ever seen"
BODY_V2 = (
    "In the pivotal trial, patients on CardioZen had 24% fewer major cardiac events "
    "than on placebo over three years."
)
CITATION = "Smith J et al. CardioZen outcomes trial. N Engl J Med 2025;392:101-112."


def _fill(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def _check(browser, group: str, label: str) -> None:
    browser.find_element(
        By.XPATH, f"//div[@id='field-{group}']//label[normalize-space()='{label}']/input"
    ).click()


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


def _open_my_task(browser, live_server, title: str) -> None:
    """From the nav bar to the queue, then the task of this module."""
    submit(browser, browser.find_element(By.LINK_TEXT, "Review queue"))
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Review queue"
    submit(browser, browser.find_element(By.LINK_TEXT, title))
    wait_for_css(browser, "#decision-form")


def _sign(browser, decision: str, password: str = PASSWORD, comment: str = "") -> None:
    browser.find_element(By.CSS_SELECTOR, f"input[name=decision][value={decision}]").click()
    if comment:
        _fill(browser, "id_comment", comment)
    _fill(browser, "id_password", password)
    submit(browser, browser.find_element(By.ID, "sign-button"))


def _approved_listing_has(module: Module, engine) -> bool | None:
    """Whether GET /api/v1/content lists the module (None while that API does not exist)."""
    try:
        url = reverse("content-list")
    except NoReverseMatch:
        return None
    response = api_client(engine).get(url)
    assert response.status_code == 200
    return any(item["module"] == module.pk for item in response.json()["results"])


def test_module_goes_from_draft_through_changes_to_approved_in_the_browser(
    browser, live_server, author, medical, legal, regulatory, engine, vocabulary
):
    Reference.objects.create(citation=CITATION, created_by=author)

    # The author creates the module through the form and submits it for review.
    login(browser, live_server, author)
    browser.get(live_server.url + reverse("library:module_create"))
    wait_for_css(browser, "form.module-form")
    _fill(browser, "id_title", "Outcomes email")
    _fill(browser, "id_headline", "Fewer heart attacks with CardioZen")
    _fill(browser, "id_body", BODY_V1)
    _fill(browser, "id_key_message", "CardioZen reduced major cardiac events by 24%.")
    _fill(browser, "id_call_to_action", "Read the full study")
    Select(browser.find_element(By.ID, "id_brand")).select_by_visible_text("CardioZen")
    Select(browser.find_element(By.ID, "id_market")).select_by_visible_text("UK")
    Select(browser.find_element(By.ID, "id_message")).select_by_visible_text("Efficacy")
    _check(browser, "themes", "Outcomes")
    Select(browser.find_element(By.ID, "id_tonality")).select_by_visible_text("Clinical")
    Select(browser.find_element(By.ID, "id_format")).select_by_visible_text("Text")
    _check(browser, "channels", "Email")
    _check(browser, "channels", "Web")
    Select(browser.find_element(By.ID, "id_references")).select_by_visible_text(CITATION)
    browser.execute_script(
        "document.getElementById('id_expires_on').value = arguments[0];",
        (timezone.localdate() + timedelta(days=365)).isoformat(),
    )
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))
    module_url = browser.current_url
    module = Module.objects.get(latest__title="Outcomes email")
    screenshot(browser, "review-module-panel-draft")
    submit(browser, browser.find_element(By.ID, "submit-for-review"))
    assert "submitted for MLR review" in wait_for_css(browser, ".messages .success").text
    statuses = browser.find_element(By.ID, "role-status").text
    assert "Medical" in statuses and "Legal" in statuses and "Regulatory" in statuses
    logout(browser)

    # The legal reviewer selects a span in the email preview, comments, requests changes.
    login(browser, live_server, legal)
    _open_my_task(browser, live_server, "Outcomes email")
    assert browser.find_element(By.CSS_SELECTOR, ".email-meta strong").text == (
        "Fewer heart attacks with CardioZen"
    )
    assert "Read the full study" in browser.find_element(By.CSS_SELECTOR, ".email-cta").text
    assert "as legal reviewer" in browser.find_element(By.ID, "signature-statement").text
    _select_text(browser, ".email-text[data-field=body]", SPAN)
    note = wait_for(
        browser,
        lambda b: (
            "Commenting on" in b.find_element(By.ID, "selection-note").text
            and b.find_element(By.ID, "selection-note").text
        ),
    )
    assert SPAN in note
    _fill(browser, "id_text", "Superlative claim: state the measured effect and cite it.")
    submit(browser, browser.find_element(By.ID, "annotation-submit"))
    mark = wait_for_css(browser, ".email-text mark.anno")
    assert mark.text == SPAN
    annotation = Annotation.objects.get()
    assert (annotation.field, annotation.quoted_text) == ("body", SPAN)
    assert BODY_V1[annotation.start : annotation.end] == SPAN
    screenshot(browser, "review-task-annotated")
    _sign(browser, "request_changes", comment="See the comment on the body: no superlatives.")
    assert "changes requested" in wait_for_css(browser, ".messages .success").text.lower()
    logout(browser)

    # The author reads the comment on the module page, revises and resubmits.
    login(browser, live_server, author)
    browser.get(module_url)
    comments = wait_for_css(browser, "#reviewer-comments").text
    assert "no superlatives" in comments and SPAN in comments
    submit(browser, browser.find_element(By.LINK_TEXT, "Edit"))
    _fill(browser, "id_body", BODY_V2)
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))
    assert "draft version 2" in wait_for_css(browser, ".messages .success").text
    submit(browser, browser.find_element(By.ID, "submit-for-review"))
    assert "Version 2 submitted" in wait_for_css(browser, ".messages .success").text
    logout(browser)

    # Each reviewer signs version 2; the medical reviewer checks the reference first
    # (and mistypes the password once, which is refused and recorded).
    login(browser, live_server, medical)
    _open_my_task(browser, live_server, "Outcomes email")
    diff = browser.find_element(By.ID, "diff").text
    assert "Against the previous version (1, changes requested)" in diff
    inserted = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "#diff ins"))
    assert "24%" in inserted and "placebo" in inserted
    outdated = browser.find_element(By.ID, "annotations").text
    assert "Outdated comments from version 1" in outdated
    browser.find_element(By.CSS_SELECTOR, "input[name=checked_references]").click()
    _sign(browser, "approve", password="not-the-password")
    assert "Password is missing or wrong" in wait_for_css(browser, "#decision-error").text
    assert AuthFailure.objects.filter(username=medical.username).count() == 1
    assert not Signature.objects.filter(signer=medical).exists()
    screenshot(browser, "review-task-wrong-password")
    _sign(browser, "approve")
    assert "as medical reviewer" in wait_for_css(browser, ".messages .success").text
    logout(browser)

    for reviewer, role in ((legal, "legal"), (regulatory, "regulatory")):
        login(browser, live_server, reviewer)
        _open_my_task(browser, live_server, "Outcomes email")
        if role == "regulatory":
            screenshot(browser, "review-task")
        _sign(browser, "approve")
        assert f"as {role} reviewer" in wait_for_css(browser, ".messages .success").text
        if role == "legal":
            screenshot(browser, "review-queue-after-signing")
        logout(browser)

    # The module is approved, shows its signatures and is served.
    version = ModuleVersion.objects.get(module=module, number=2)
    assert version.status == VersionStatus.APPROVED
    assert list(ModuleVersion.objects.approved_now().filter(module=module)) == [version]
    signed = Signature.objects.filter(version=version, meaning="approved")
    assert {s.role for s in signed} == {"medical", "legal", "regulatory"}
    assert {s.content_hash for s in signed} == {version.compute_content_hash()}
    assert not version.tasks.filter(status=TaskStatus.OPEN).exists()
    listed = _approved_listing_has(module, engine)
    assert listed in (True, None)

    login(browser, live_server, author)
    browser.get(module_url)
    assert wait_for_css(browser, "#approved-current").is_displayed()
    panel = browser.find_element(By.ID, "panel-signatures").text
    for name in ("Mia Medical", "Leo Legal", "Rita Regulatory"):
        assert name in panel
    assert version.content_hash[:12] in panel
    screenshot(browser, "review-module-panel-approved")
    submit(browser, browser.find_element(By.ID, "history-link"))
    assert "version.approved" in browser.find_element(By.ID, "audit").text
    screenshot(browser, "review-history")
    logout(browser)

    login(browser, live_server, legal)
    browser.get(live_server.url + reverse("review:dashboard"))
    wait_for_css(browser, "#cycle-time svg")
    screenshot(browser, "review-dashboard")

    # The wrong password attempt logs a 403 page load; nothing else may fail.
    assert console_errors(browser, allow=("403 (Forbidden)", "favicon")) == []
