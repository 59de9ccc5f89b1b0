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
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from content_modules.accounts.models import AuthFailure
from content_modules.library.models import Module, ModuleVersion, Reference, VersionStatus
from content_modules.review.models import Annotation, Signature, TaskStatus
from tests.factories import PASSWORD, api_client, make_module
from tests.review.helpers import approve_all, send_back
from tests.review.helpers import submit as submit_version

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


@pytest.fixture
def png_file(tmp_path):
    """A real PNG on disk, as the author picks it in the file dialog."""
    from PIL import Image, ImageDraw

    path = tmp_path / "outcomes-chart.png"
    image = Image.new("RGB", (720, 300), (240, 245, 252))
    draw = ImageDraw.Draw(image)
    for i, height in enumerate((210, 160)):
        x = 200 + i * 220
        colour = (31, 95, 191) if i else (155, 170, 190)
        draw.rectangle((x, 260 - height, x + 120, 260), fill=colour)
    image.save(path, "PNG")
    return path


@pytest.fixture
def warm_embedding_model():
    """Load torch and the embedding model once, as a worker does at start-up.

    Saving a module embeds it (an eager Celery task here); the first load
    would otherwise happen inside the live server's request and, on a busy
    machine, outlast the browser's page-load timeout.
    """
    from content_modules.affinity.embeddings import encode, model_info

    encode(["warm-up"])
    model_info()


def _image_loaded(browser, selector: str) -> bool:
    return browser.execute_script(
        "const img = document.querySelector(arguments[0]);"
        "return !!img && img.complete && img.naturalWidth > 0;",
        selector,
    )


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


def _approved_listing(engine) -> list[tuple[int, int]]:
    """(module, version) pairs the engine gets from GET /api/v1/content."""
    response = api_client(engine).get(reverse("api-content-list"))
    assert response.status_code == 200, response.content[:300]
    return [(item["module"], item["version"]) for item in response.json()["results"]]


def test_module_goes_from_draft_through_changes_to_approved_in_the_browser(
    browser,
    live_server,
    author,
    medical,
    legal,
    regulatory,
    engine,
    vocabulary,
    png_file,
    warm_embedding_model,
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
    _check(browser, "references", CITATION)
    browser.execute_script(
        "document.getElementById('id_expires_on').value = arguments[0];",
        (timezone.localdate() + timedelta(days=365)).isoformat(),
    )
    browser.find_element(By.ID, "id_image").send_keys(str(png_file))
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
    wait_for(browser, lambda b: _image_loaded(b, ".email-image"))
    assert _image_loaded(browser, ".web-image")
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
    signed = wait_for_css(browser, ".messages .success").text
    assert "changes requested" in signed.lower() and "The round stays open" in signed
    logout(browser)
    assert _approved_listing(engine) == []  # nothing of it is served yet

    # Every role finishes the round: the author sees progress, not partial feedback.
    login(browser, live_server, author)
    browser.get(module_url)
    assert "1 of 3 roles decided" in wait_for_css(browser, "#round-progress").text
    assert not browser.find_elements(By.ID, "reviewer-comments")
    logout(browser)
    login(browser, live_server, medical)
    _open_my_task(browser, live_server, "Outcomes email")
    _sign(browser, "request_changes", comment="Quote the trial's measured effect.")
    logout(browser)
    login(browser, live_server, regulatory)
    _open_my_task(browser, live_server, "Outcomes email")
    _sign(browser, "approve")
    assert "closed as changes requested" in wait_for_css(browser, ".messages .success").text
    logout(browser)

    # The author reads every role's feedback together, revises and resubmits.
    login(browser, live_server, author)
    browser.get(module_url)
    comments = wait_for_css(browser, "#reviewer-comments").text
    assert "no superlatives" in comments and SPAN in comments
    assert "measured effect" in comments and "Rita Regulatory" in comments
    screenshot(browser, "review-module-panel-round-feedback")
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
    assert "Changed by version 2: comments on text that is gone" in outdated
    browser.find_element(By.CSS_SELECTOR, "input[name=checked_references]").click()
    _sign(browser, "approve", password="not-the-password")
    assert "Password is missing or wrong" in wait_for_css(browser, "#decision-error").text
    assert AuthFailure.objects.filter(username=medical.username).count() == 1
    assert not Signature.objects.filter(signer=medical, version__number=2).exists()
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
    assert _approved_listing(engine) == [(module.pk, 2)]

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

    # The wrong password attempt logs a 403 page load; nothing else may fail.
    assert console_errors(browser, allow=("403 (Forbidden)", "favicon")) == []


def _backdate(version: ModuleVersion, submitted, hours: float) -> None:
    """Move a finished review into the past: submitted then, approved ``hours`` later."""
    version.reviews.update(submitted_at=submitted)
    ModuleVersion.objects.filter(pk=version.pk).update(
        submitted_at=submitted, approved_at=submitted + timedelta(hours=hours)
    )


def test_dashboard_and_queue_show_a_working_month(
    browser, live_server, author, medical, legal, regulatory, vocabulary
):

    # Six weeks of approvals with growing cycle times, one sent back in round 1.
    # Each week's reviews start on its Monday 06:00 UTC and end by Friday, so
    # every approval falls in its own ISO week whatever weekday the test runs on
    # (anchored on "now", the longest one crossed into the current week from
    # Wednesday 11:00 on, and the chart showed 7 weeks).
    now = timezone.now()
    this_monday = (now - timedelta(days=now.weekday())).replace(
        hour=6, minute=0, second=0, microsecond=0
    )
    for week in range(6):
        for n in range(2):
            version = approve_all(
                make_module(author, title=f"Approved w{week} #{n}"), medical, legal, regulatory
            )
            submitted = this_monday - timedelta(weeks=6 - week, hours=n)
            _backdate(version, submitted, 20 + 12 * week + 30 * n)
    sent_back = make_module(author, title="Sent back once")
    submit_version(sent_back)
    send_back(
        sent_back,
        "legal",
        legal,
        comment="Qualify the claim.",
        reviewers={"medical": medical, "regulatory": regulatory},
    )
    # Open tasks of several ages, two of them overdue.
    for age_days, title in ((0, "Fresh"), (2, "Two days old"), (4, "Four days old"), (8, "Late")):
        version = make_module(author, title=f"Open: {title}")
        submit_version(version)
        version.tasks.update(
            created_at=now - timedelta(days=age_days),
            due_at=now - timedelta(days=age_days) + timedelta(days=5),
        )
    late = ModuleVersion.objects.get(title="Open: Late")
    late.tasks.update(due_at=now - timedelta(days=1))

    login(browser, live_server, legal)
    submit(browser, browser.find_element(By.LINK_TEXT, "MLR dashboard"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#cycle-time rect.bar.median")
    assert len(bars) == 6
    assert browser.find_element(By.ID, "kpi-open").text == "12"
    first_pass = browser.find_element(By.ID, "first-pass").text
    assert "Legal" in first_pass and "92% (12/13)" in first_pass
    stacks = browser.find_elements(By.CSS_SELECTOR, "#open-tasks svg rect")
    assert len(stacks) == 3 * 4  # three roles, each with tasks in all four age buckets
    screenshot(browser, "review-dashboard")

    submit(browser, browser.find_element(By.LINK_TEXT, "Review queue"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".title-cell").text for r in rows][0] == "Open: Late"
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.queue .badge.overdue")) == 1
    screenshot(browser, "review-queue")
    Select(browser.find_element(By.ID, "id_overdue")).select_by_visible_text("Overdue only")
    submit(browser, browser.find_element(By.CSS_SELECTOR, ".filter-actions button"))
    titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.queue .title-cell")]
    assert titles == ["Open: Late"]
    assert console_errors(browser) == []
