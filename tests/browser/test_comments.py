"""Issue 12 points 8 and 9 in Chromium: comments beside the preview, worked by the author.

A reviewer drags across part of two words in the preview: the comment box opens
next to the selection, the selection snaps to whole words and the saved anchor
is those words; the comment then sits in the margin level with its text. The
author, on the edit page, reads the comments, replies, marks one addressed,
rewrites the body and resubmits; the reviewer sees the reply, what the new
version resolved and, for a comment whose text is gone, the old text.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By

from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.review.models import Annotation
from tests.factories import make_module
from tests.review.helpers import send_back, task_for
from tests.review.helpers import submit as submit_version

from .helpers import console_errors, login, logout, screenshot, submit, wait_for, wait_for_css

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY_V1 = (
    "In the pivotal trial, patients on CardioZen had the best outcomes ever seen "
    "in heart failure over three years. Treatment was well tolerated by most patients "
    "in every age group studied, and adherence stayed high throughout the study."
)
BODY_V2 = (
    "In the HEART-2 trial, patients on CardioZen had the best outcomes ever seen "
    "in heart failure over three years. Treatment was well tolerated by most patients "
    "in every age group studied, and adherence stayed high throughout the study."
)


def _select(browser, selector: str, start: int, end: int) -> None:
    """Select characters [start, end) of the element's text, as a mouse drag would."""
    browser.execute_script(
        """
        const el = document.querySelector(arguments[0]);
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        function point(offset) {
          let node, left = offset;
          walker.currentNode = el;
          while ((node = walker.nextNode())) {
            if (left <= node.data.length) return [node, left];
            left -= node.data.length;
          }
        }
        const [a, i] = point(arguments[1]);
        const [b, j] = point(arguments[2]);
        const range = document.createRange();
        range.setStart(a, i);
        range.setEnd(b, j);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        el.dispatchEvent(new MouseEvent("mouseup", {bubbles: true}));
        """,
        selector,
        start,
        end,
    )


def _gap_to_selection(browser) -> float:
    """Vertical distance in px from the current selection to the open comment box."""
    return browser.execute_script(
        """
        const sel = window.getSelection().getRangeAt(0).getBoundingClientRect();
        const box = document.getElementById("annotation-form").getBoundingClientRect();
        if (box.top >= sel.bottom) return box.top - sel.bottom;
        if (box.bottom <= sel.top) return sel.top - box.bottom;
        return 0;
        """
    )


def _comment_on(browser, selector: str, partial: str, text: str) -> None:
    body = BODY_V1
    start = body.index(partial)
    _select(browser, selector, start, start + len(partial))
    wait_for_css(browser, "#annotation-form.floating")
    _type(browser, "id_text", text)
    submit(browser, browser.find_element(By.ID, "annotation-submit"))


def _type(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def _top(browser, selector: str) -> float:
    return browser.execute_script(
        "return document.querySelector(arguments[0]).getBoundingClientRect().top;", selector
    )


def test_comments_beside_the_preview_worked_by_the_author(
    browser, live_server, author, legal, vocabulary, warm_embedding_model
):
    version = make_module(author, title="Margin module", body=BODY_V1)
    submit_version(version)
    task_url = live_server.url + reverse("review:task", args=[task_for(version, "legal").pk])

    # The reviewer drags from inside "best" to inside "seen": the box opens at the selection.
    login(browser, live_server, legal)
    browser.get(task_url)
    wait_for_css(browser, "#decision-form")
    partial = "est outcomes ever se"
    start = BODY_V1.index(partial)
    _select(browser, ".email-text[data-field=body]", start, start + len(partial))
    wait_for_css(browser, "#annotation-form.floating")
    gap = _gap_to_selection(browser)
    assert gap < 150, f"the comment box is {gap:.0f} px from the selection"
    snapped = wait_for(
        browser,
        lambda b: (
            b.execute_script("return window.getSelection().toString();")
            == "best outcomes ever seen"
            and "best outcomes ever seen"
        ),
    )
    assert snapped == "best outcomes ever seen"
    assert "“best outcomes ever seen”" in browser.find_element(By.ID, "selection-note").text
    screenshot(browser, "comments-composer-at-selection")
    _type(browser, "id_text", "Superlative: state the measured effect.")
    submit(browser, browser.find_element(By.ID, "annotation-submit"))
    best = Annotation.objects.get()
    assert best.quoted_text == "best outcomes ever seen"
    assert BODY_V1[best.start : best.end] == "best outcomes ever seen"

    assert not browser.find_element(By.ID, "annotation-cancel").is_displayed()

    # The comment sits in the margin, level with its highlighted text.
    card = wait_for_css(browser, f"#margin-{best.pk}")
    assert "Superlative: state the measured effect." in card.text
    mark_top = _top(browser, f".email-text mark.anno[data-annotations~='{best.pk}']")
    assert abs(_top(browser, f"#margin-{best.pk}") - mark_top) < 40
    card_x = browser.execute_script(
        "return document.getElementById(arguments[0]).getBoundingClientRect().left;",
        f"margin-{best.pk}",
    )
    preview_right = browser.execute_script(
        "return document.getElementById('previews').getBoundingClientRect().right;"
    )
    assert card_x >= preview_right  # beside the text, not under it

    # A second comment, on words the author will remove.
    _comment_on(browser, ".email-text[data-field=body]", "ivotal tri", "Which trial?")
    pivotal = Annotation.objects.get(quoted_text="pivotal trial")
    wait_for_css(browser, f"#margin-{pivotal.pk}")
    screenshot(browser, "comments-margin")
    assert console_errors(browser, allow=("favicon",)) == []
    logout(browser)
    send_back(version, "legal", legal, comment="See the comments on the body.")

    # The author reads both comments on the edit page, replies, marks one addressed,
    # rewrites the trial's name and resubmits.
    login(browser, live_server, author)
    browser.get(live_server.url + reverse("library:module_edit", args=[version.module_id]))
    panel = wait_for_css(browser, "#author-comments")
    assert "Superlative: state the measured effect." in panel.text and "Which trial?" in panel.text
    assert "best outcomes ever seen" in panel.text and "pivotal trial" in panel.text
    _type(browser, f"author-reply-{pivotal.pk}", "Named the trial: HEART-2.")
    submit(
        browser, browser.find_element(By.CSS_SELECTOR, f"#comment-{pivotal.pk} .reply-form button")
    )
    assert "Reply added." in wait_for_css(browser, ".messages .success").text
    _type(browser, f"author-reply-{best.pk}", "Kept, with the effect size in the key message.")
    submit(browser, browser.find_element(By.CSS_SELECTOR, f"#comment-{best.pk} .reply-form button"))
    submit(
        browser, browser.find_element(By.CSS_SELECTOR, f"#comment-{best.pk} .address-form button")
    )
    assert "Marked addressed by Ada Author" in wait_for_css(browser, f"#comment-{best.pk}").text
    screenshot(browser, "comments-edit-page")
    _type(browser, "id_body", BODY_V2)
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".form-actions button[type=submit]"))
    assert "draft version 2" in wait_for_css(browser, ".messages .success").text
    submit(browser, browser.find_element(By.ID, "submit-for-review"))
    assert "Version 2 submitted" in wait_for_css(browser, ".messages .success").text
    v2 = ModuleVersion.objects.get(module=version.module, number=2)
    assert v2.status == VersionStatus.IN_REVIEW
    logout(browser)

    # The reviewer sees the replies, what version 2 resolved and the removed text.
    login(browser, live_server, legal)
    browser.get(live_server.url + reverse("review:task", args=[task_for(v2, "legal").pk]))
    outcome = wait_for_css(browser, "#round-outcome").text
    assert (
        "1 on text this version changed, 1 marked addressed by the author, 0 still open" in outcome
    )
    carried = Annotation.objects.get(version=v2, origin=best)
    thread = browser.find_element(By.ID, f"annotation-{carried.pk}").text
    assert "Addressed by the author" in thread
    assert "Kept, with the effect size in the key message." in thread
    assert "Addressed" in browser.find_element(By.ID, f"margin-{carried.pk}").text
    changed = browser.find_element(By.ID, f"changed-{pivotal.pk}")
    assert changed.find_element(By.CSS_SELECTOR, "del.quoted-old").text == "pivotal trial"
    assert "Named the trial: HEART-2." in changed.text and "Which trial?" in changed.text
    screenshot(browser, "comments-resolved-by-new-version")

    # On a narrow screen the margin stacks below and the box opens just under the selection.
    browser.set_window_size(640, 900)
    wait_for(
        browser,
        lambda b: b.execute_script(
            "return !document.getElementById('comment-margin').classList.contains('aligned');"
        ),
    )
    at = BODY_V2.index("ell tolerat")
    _select(browser, ".email-text[data-field=body]", at, at + len("ell tolerat"))
    wait_for_css(browser, "#annotation-form.floating")
    assert _gap_to_selection(browser) < 150
    assert browser.execute_script("return window.getSelection().toString();") == "well tolerated"
    assert console_errors(browser, allow=("favicon",)) == []
