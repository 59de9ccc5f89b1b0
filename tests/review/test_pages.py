"""Reviewer pages through the Django test client: queue, review page, decisions, annotations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from content_modules.accounts.models import AuthFailure
from content_modules.accounts.roles import Role
from content_modules.library.models import ModuleVersion, Reference, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.models import (
    Annotation,
    ReferenceCheck,
    ReviewTask,
    Signature,
    TaskStatus,
)
from content_modules.review.pages import browser_offsets_to_raw, highlight_segments
from tests.factories import PASSWORD, make_module, make_user
from tests.review.helpers import decide, send_back, submit, task_for

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def reference(author):
    return Reference.objects.create(
        citation="Smith J et al. CardioZen outcomes trial. NEJM 2025;392:1-10.",
        url="https://example.org/smith2025",
        created_by=author,
    )


@pytest.fixture
def in_review(author, reference):
    """A version in review with one reference, submitted by its author."""
    version = make_module(author, references=[reference])
    submit(version)
    version.refresh_from_db()
    return version


def decide_url(version, role):
    return reverse("review:task_decide", args=[task_for(version, role).pk])


# --- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["review:queue", "review:dashboard"])
def test_reviewer_pages_answer_reviewers_and_admins_and_refuse_others(
    client, name, medical, admin_user, author, engine
):
    for user, status in ((medical, 200), (admin_user, 200), (author, 403), (engine, 403)):
        client.force_login(user)
        response = client.get(reverse(name))
        assert response.status_code == status, user
    client.logout()
    assert client.get(reverse(name)).status_code == 302


def test_task_page_is_for_reviewers_only(client, in_review, legal, author, engine):
    url = reverse("review:task", args=[task_for(in_review, "legal").pk])
    assert login(client, legal).get(url).status_code == 200
    assert login(client, author).get(url).status_code == 403
    assert login(client, engine).get(url).status_code == 403


def test_history_page_is_for_people_who_work_on_content(client, in_review, author, legal, engine):
    url = reverse("review:module_history", args=[in_review.module_id])
    assert login(client, author).get(url).status_code == 200
    assert login(client, legal).get(url).status_code == 200
    assert login(client, engine).get(url).status_code == 403


# --- queue ---------------------------------------------------------------------------------


def test_queue_lists_open_tasks_of_my_role_overdue_first(client, author, legal):
    soon = make_module(author, title="Due soon")
    late = make_module(author, title="Already late")
    submit(soon)
    submit(late)
    ReviewTask.objects.filter(version=late).update(due_at=timezone.now() - timedelta(days=2))

    response = login(client, legal).get(reverse("review:queue"))

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("Already late") < body.index("Due soon")
    assert body.count('class="badge overdue"') == 1
    assert response.context["page"].paginator.count == 2
    assert {t.role for t in response.context["page"].object_list} == {"legal"}


def test_queue_leaves_out_versions_i_wrote(client, author):
    author_reviewer = make_user(Role.LEGAL)
    author_reviewer.groups.add(*author.groups.all())
    mine = make_module(author_reviewer, title="Written by me")
    other = make_module(author, title="Written by someone else")
    submit(mine)
    submit(other)

    body = login(client, author_reviewer).get(reverse("review:queue")).content.decode()

    assert "Written by someone else" in body
    assert "Written by me" not in body


def test_queue_filters_by_brand_market_and_overdue(client, author, legal):
    uk = make_module(author, title="UK module", brand="cardiozen", market="UK")
    de = make_module(author, title="DE module", brand="neurolift", market="DE")
    submit(uk)
    submit(de)
    ReviewTask.objects.filter(version=de).update(due_at=timezone.now() - timedelta(hours=1))
    client = login(client, legal)

    by_brand = client.get(reverse("review:queue"), {"brand": "neurolift"}).content.decode()
    by_market = client.get(reverse("review:queue"), {"market": "UK"}).content.decode()
    overdue = client.get(reverse("review:queue"), {"overdue": "true"}).content.decode()

    assert "DE module" in by_brand and "UK module" not in by_brand
    assert "UK module" in by_market and "DE module" not in by_market
    assert "DE module" in overdue and "UK module" not in overdue


def test_queue_status_filter_shows_decided_tasks_of_my_role(client, author, legal):
    version = make_module(author, title="Sent back")
    submit(version)
    decide(version, "legal", legal, "request_changes", comment="Soften the claim.")

    client = login(client, legal)
    open_page = client.get(reverse("review:queue")).content.decode()
    decided = client.get(reverse("review:queue"), {"status": "changes_requested"})

    assert "Sent back" not in open_page
    assert "Sent back" in decided.content.decode()


def test_queue_reports_an_unknown_filter_instead_of_failing(client, in_review, legal):
    response = login(client, legal).get(reverse("review:queue"), {"role": "janitor"})

    assert response.status_code == 200
    assert "Some filters were not understood" in response.content.decode()
    assert response.context["page"].paginator.count == 1


def _open_tasks(author, n):
    for i in range(n):
        submit(make_module(author, title=f"Queued {i}"))


@pytest.mark.parametrize("n", [3, 30])
def test_queue_query_count_does_not_grow_with_tasks(
    client, author, legal, n, django_assert_max_num_queries
):
    _open_tasks(author, n)
    client = login(client, legal)
    # One more than before: every role's progress on the listed rounds, in one query.
    with django_assert_max_num_queries(8):
        response = client.get(reverse("review:queue"))
    assert response.context["page"].paginator.count == n


# --- review page ---------------------------------------------------------------------------


def test_review_page_previews_email_and_web_with_references_and_statement(
    client, in_review, medical, reference
):
    response = login(client, medical).get(
        reverse("review:task", args=[task_for(in_review, "medical").pk])
    )
    body = response.content.decode()

    assert response.status_code == 200
    assert 'class="email-frame"' in body and 'class="web-card"' in body
    assert f'data-field="headline">{in_review.headline}<' in body
    assert f'data-field="call_to_action">{in_review.call_to_action}<' in body
    assert 'name="checked_references"' in body and reference.citation in body
    assert (
        f"By signing I approve version 1 (hash {in_review.content_hash[:12]}…) "
        "as medical reviewer." in body
    )
    assert "This is the module&#x27;s first version" in body or "first version" in body


def test_only_the_medical_reviewer_gets_reference_checkboxes(client, in_review, legal):
    body = (
        login(client, legal)
        .get(reverse("review:task", args=[task_for(in_review, "legal").pk]))
        .content.decode()
    )
    assert 'name="checked_references"' not in body
    assert "By signing I approve version 1" in body


def test_review_page_highlights_the_diff_against_the_previous_version(
    client, author, legal, medical, regulatory
):
    version = make_module(author, body="Patients had fewer events.")
    submit(version)
    send_back(version, "legal", legal, comment="Say how many fewer.")
    module_edit(
        actor=author, module=version.module, changes={"body": "Patients had 24% fewer events."}
    )
    v2 = ModuleVersion.objects.get(module=version.module, number=2)
    submit(v2)

    response = login(client, legal).get(reverse("review:task", args=[task_for(v2, "legal").pk]))
    body = response.content.decode()

    assert "Against the previous version (1, changes requested)" in body
    assert '<ins class="diff-ins"> 24%</ins>' in body
    assert 'data-diff-field="body"' in body and 'data-diff-field="title"' not in body


# --- decisions -----------------------------------------------------------------------------


def test_wrong_password_shows_the_error_and_records_only_the_failed_attempt(
    client, in_review, legal
):
    task = task_for(in_review, "legal")
    response = login(client, legal).post(
        decide_url(in_review, "legal"),
        {"decision": "approve", "comment": "", "password": "not-my-password"},
    )

    assert response.status_code == 403
    body = response.content.decode()
    assert "The decision was not signed" in body
    assert "Password is missing or wrong" in body
    assert "not-my-password" not in body
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert not Signature.objects.filter(version=in_review).exists()
    assert AuthFailure.objects.filter(username=legal.username).count() == 1


def test_request_changes_needs_a_comment(client, in_review, legal):
    response = login(client, legal).post(
        decide_url(in_review, "legal"), {"decision": "request_changes", "password": PASSWORD}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Say what must change" in body
    assert not Signature.objects.exists()
    # The typed password and the chosen decision are kept for the second try.
    assert f'value="{PASSWORD}"' in body
    assert re.search(r'<input[^>]*value="request_changes"[^>]*checked', body)


def test_no_decision_is_preselected(client, in_review, legal):
    body = login(client, legal).get(reverse("review:task", args=[task_for(in_review, "legal").pk]))
    html = body.content.decode()

    radios = re.findall(r'<input type="radio" name="decision"[^>]*>', html)
    assert len(radios) == 3 and not [r for r in radios if "checked" in r]
    assert "Choose a decision above" in html


def test_signing_without_a_decision_is_refused_and_keeps_the_password(client, in_review, legal):
    # The reviewer typed the password and pressed Enter without choosing.
    response = login(client, legal).post(decide_url(in_review, "legal"), {"password": PASSWORD})

    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose a decision: approve, request changes or reject." in body
    assert f'value="{PASSWORD}"' in body
    assert not Signature.objects.exists()
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_medical_approval_requires_every_reference_checked(client, in_review, medical, reference):
    url = decide_url(in_review, "medical")
    client = login(client, medical)

    refused = client.post(url, {"decision": "approve", "password": PASSWORD})
    assert refused.status_code == 400
    assert "Every reference must be checked" in refused.content.decode()
    assert not ReferenceCheck.objects.exists() and not Signature.objects.exists()

    signed = client.post(
        url,
        {"decision": "approve", "password": PASSWORD, "checked_references": [reference.pk]},
    )
    assert signed.status_code == 302
    assert ReferenceCheck.objects.filter(reference=reference, checked_by=medical).count() == 1
    assert Signature.objects.get().role == "medical"


def test_three_approvals_through_the_page_approve_the_version(
    client, in_review, medical, legal, regulatory, reference
):
    for user, role in ((medical, "medical"), (legal, "legal"), (regulatory, "regulatory")):
        data = {"decision": "approve", "password": PASSWORD}
        if role == "medical":
            data["checked_references"] = [reference.pk]
        response = login(client, user).post(decide_url(in_review, role), data, follow=True)
        assert response.status_code == 200
        assert f"as {role} reviewer" in response.content.decode()

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.APPROVED
    assert ModuleVersion.objects.approved_now().filter(pk=in_review.pk).exists()
    assert "Every role has approved" in response.content.decode()


def test_deciding_a_closed_task_says_it_is_closed(client, in_review, legal):
    decide(in_review, "legal", legal, "approve")
    response = login(client, legal).post(
        decide_url(in_review, "legal"), {"decision": "approve", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert "already approved" in response.content.decode()
    assert Signature.objects.count() == 1


def test_one_person_cannot_sign_in_two_roles(client, in_review, reference):
    both = make_user(Role.MEDICAL)
    both.groups.add(make_user(Role.LEGAL).groups.get())
    decide(in_review, "medical", both, checked_reference_ids=[reference.pk])

    response = login(client, both).post(
        decide_url(in_review, "legal"), {"decision": "approve", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert "one person fills at most one review role" in response.content.decode()
    assert Signature.objects.filter(signer=both).count() == 1


def test_a_reviewer_of_another_role_sees_no_decision_form(client, in_review, medical):
    response = login(client, medical).get(
        reverse("review:task", args=[task_for(in_review, "legal").pk])
    )
    assert response.status_code == 200
    assert 'id="decision-form"' not in response.content.decode()
    refused = client.post(
        decide_url(in_review, "legal"), {"decision": "approve", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert "you do not hold that role" in refused.content.decode()


# --- annotations ---------------------------------------------------------------------------


def test_annotation_from_the_page_form_anchors_the_selected_text(client, in_review, legal):
    start = in_review.body.index("fewer major cardiac events")
    end = start + len("fewer major cardiac events")
    task = task_for(in_review, "legal")
    client = login(client, legal)

    response = client.post(
        reverse("review:annotation_create", args=[task.pk]),
        {
            "field": "body",
            "start": start,
            "end": end,
            "quote": "fewer major cardiac events",
            "text": "Give the absolute risk reduction too.",
        },
    )

    annotation = Annotation.objects.get()
    assert response.status_code == 302
    assert (annotation.field, annotation.start, annotation.end) == ("body", start, end)
    assert annotation.quoted_text == "fewer major cardiac events"
    page = client.get(reverse("review:task", args=[task.pk])).content.decode()
    assert '<mark class="anno"' in page and ">fewer major cardiac events</mark>" in page
    assert "Give the absolute risk reduction too." in page


def test_annotation_outside_the_text_is_refused_with_the_reason(client, in_review, legal):
    task = task_for(in_review, "legal")
    response = login(client, legal).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"field": "headline", "start": 5, "end": 5000, "text": "Too far"},
    )
    assert response.status_code == 400
    assert "End must be after start and at most" in response.content.decode()
    assert not Annotation.objects.exists()


def test_annotation_whose_quote_no_longer_matches_is_refused(client, in_review, legal):
    task = task_for(in_review, "legal")
    response = login(client, legal).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"field": "body", "start": 0, "end": 6, "quote": "Nothing", "text": "Stale page"},
    )
    assert response.status_code == 400
    assert "does not match this version" in response.content.decode()
    assert not Annotation.objects.exists()


def test_selection_offsets_on_text_with_crlf_map_to_the_stored_text(client, author, legal):
    version = make_module(author, body="First line.\r\nSecond line has the claim.")
    submit(version)
    # The browser sees "First line.\nSecond line has the claim." and measures there.
    seen = "First line.\nSecond line has the claim."
    start = seen.index("the claim")
    response = login(client, legal).post(
        reverse("review:annotation_create", args=[task_for(version, "legal").pk]),
        {
            "field": "body",
            "start": start,
            "end": start + 9,
            "quote": "the claim",
            "text": "Which claim?",
        },
    )
    assert response.status_code == 302
    annotation = Annotation.objects.get()
    assert annotation.quoted_text == "the claim"
    assert version.body[annotation.start : annotation.end] == "the claim"


def test_reply_and_resolve_through_the_page(client, in_review, legal, medical):
    task = task_for(in_review, "legal")
    login(client, legal).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"field": "headline", "start": 0, "end": 8, "text": "Headline too strong."},
    )
    root = Annotation.objects.get()
    login(client, medical).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"parent": root.pk, "text": "Agreed."},
    )
    assert root.replies.get().text == "Agreed."

    response = client.post(reverse("review:annotation_resolve", args=[task.pk, root.pk]))
    assert response.status_code == 302
    root.refresh_from_db()
    assert root.resolved and root.resolved_by == medical


def test_outdated_comments_are_marked_on_the_next_version(client, author, legal):
    version = make_module(author, headline="Best in class for everyone")
    submit(version)
    task = task_for(version, "legal")
    login(client, legal).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"field": "headline", "start": 0, "end": 13, "text": "Unsupported superlative."},
    )
    send_back(version, "legal", legal, comment="See comment.")
    module_edit(actor=author, module=version.module, changes={"headline": "Proven outcomes"})
    v2 = ModuleVersion.objects.get(module=version.module, number=2)
    submit(v2)

    body = client.get(reverse("review:task", args=[task_for(v2, "legal").pk])).content.decode()

    assert "Changed by version 2: comments on text that is gone" in body
    assert "Unsupported superlative." in body


# --- module page panel, submit, withdraw, history ------------------------------------------


def test_author_submits_a_draft_from_the_module_page(client, author):
    version = make_module(author)
    url = reverse("library:module_detail", args=[version.module_id])
    client = login(client, author)
    assert 'id="submit-for-review"' in client.get(url).content.decode()

    response = client.post(reverse("review:module_submit", args=[version.module_id]), follow=True)

    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW
    assert set(ReviewTask.objects.filter(version=version).values_list("role", flat=True)) == {
        "medical",
        "legal",
        "regulatory",
    }
    body = response.content.decode()
    assert "submitted for MLR review" in body
    assert 'id="submit-for-review"' not in body


def test_another_author_cannot_submit_and_is_told_why(client, author, other_author):
    version = make_module(author)
    response = login(client, other_author).post(
        reverse("review:module_submit", args=[version.module_id]), follow=True
    )
    version.refresh_from_db()
    assert version.status == VersionStatus.DRAFT
    assert "Not submitted" in response.content.decode()


@pytest.fixture
def approved(in_review, medical, legal, regulatory, reference):
    decide(in_review, "medical", medical, checked_reference_ids=[reference.pk])
    decide(in_review, "legal", legal)
    decide(in_review, "regulatory", regulatory)
    in_review.refresh_from_db()
    return in_review


def test_module_page_and_history_show_signature_manifestations(client, approved, author):
    client = login(client, author)
    panel = client.get(reverse("library:module_detail", args=[approved.module_id])).content.decode()
    history = client.get(reverse("review:module_history", args=[approved.module_id]))
    body = history.content.decode()

    for page in (panel, body):
        for name in ("Mia Medical", "Leo Legal", "Rita Regulatory"):
            assert name in page
        assert approved.content_hash[:12] in page
        assert "UTC" in page and "Approved" in page
    assert "version.approved" in body and "signature.applied" in body
    assert reverse("review:module_audit_csv", args=[approved.module_id]) in body


def test_history_csv_exports_download(client, approved, author):
    client = login(client, author)
    audit = client.get(reverse("review:module_audit_csv", args=[approved.module_id]))
    record = client.get(reverse("review:version_record_csv", args=[approved.module_id, 1]))

    audit_text = b"".join(audit.streaming_content).decode()
    assert audit["Content-Type"] == "text/csv"
    assert "version.approved" in audit_text and "signature.applied" in audit_text
    assert record.content.decode().count("approved") >= 3
    assert "Leo Legal" in record.content.decode()


def test_withdraw_with_wrong_password_keeps_the_module_served(client, approved, medical):
    response = login(client, medical).post(
        reverse("review:module_withdraw", args=[approved.module_id]),
        {"reason": "Label change", "password": "wrong"},
    )
    approved.refresh_from_db()
    assert approved.status == VersionStatus.APPROVED
    # The module page again, the refusal shown, the reason kept and the wrong password not.
    assert response.status_code == 403
    body = response.content.decode()
    assert "Password is missing or wrong" in body
    assert '<textarea name="reason" id="id_withdraw_reason" rows="2" required>Label change' in body
    assert 'id="id_withdraw_password" autocomplete="current-password" value=""' in body


def test_withdraw_from_the_module_page_stops_delivery(client, approved, medical):
    page = login(client, medical).get(reverse("library:module_detail", args=[approved.module_id]))
    assert 'id="withdraw-form"' in page.content.decode()

    response = client.post(
        reverse("review:module_withdraw", args=[approved.module_id]),
        {"reason": "Label change", "password": PASSWORD},
        follow=True,
    )

    approved.refresh_from_db()
    assert approved.status == VersionStatus.WITHDRAWN
    assert not ModuleVersion.objects.approved_now().filter(module=approved.module).exists()
    assert "withdrawn from delivery" in response.content.decode()
    assert Signature.objects.filter(meaning="withdrawn", reason="Label change").count() == 1


def test_withdraw_without_a_reason_keeps_the_password(client, approved, medical):
    response = login(client, medical).post(
        reverse("review:module_withdraw", args=[approved.module_id]),
        {"reason": " ", "password": PASSWORD},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Give the reason for the withdrawal." in body
    assert f'id="id_withdraw_password" autocomplete="current-password" value="{PASSWORD}"' in body
    approved.refresh_from_db()
    assert approved.status == VersionStatus.APPROVED


def test_module_page_hands_every_roles_feedback_over_when_the_round_closes(
    client, in_review, author, medical, legal, regulatory, reference
):
    task = task_for(in_review, "legal")
    login(client, legal).post(
        reverse("review:annotation_create", args=[task.pk]),
        {"field": "headline", "start": 0, "end": 5, "text": "Which trial?"},
    )
    decide(in_review, "legal", legal, "request_changes", comment="Qualify the claim.")
    url = reverse("library:module_detail", args=[in_review.module_id])

    # While the round is open the authors see progress, not partial feedback.
    page = login(client, author).get(url).content.decode()
    assert 'id="round-progress"' in page and "1 of 3 roles decided" in page
    assert 'id="reviewer-comments"' not in page and 'id="recall-form"' in page

    decide(
        in_review,
        "medical",
        medical,
        "request_changes",
        comment="Cite the trial.",
        checked_reference_ids=[reference.pk],
    )
    decide(in_review, "regulatory", regulatory)
    page = client.get(url).content.decode()

    feedback = page[page.index('id="reviewer-comments"') :]
    feedback = feedback[: feedback.index("<h3>Signatures")]
    assert "Feedback of round 1: changes requested" in page
    for text in ("Qualify the claim.", "Cite the trial.", "Which trial?", "Rita Regulatory"):
        assert text in feedback
    assert 'id="recall-form"' not in page


def test_author_recalls_the_round_from_the_module_page(client, in_review, author):
    url = reverse("review:module_recall", args=[in_review.module_id])

    refused = login(client, author).post(url, {"reason": ""})
    assert refused.status_code == 400
    assert "Give the reason for the recall." in refused.content.decode()
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW

    response = client.post(url, {"reason": "Wrong market"}, follow=True)
    body = response.content.decode()
    assert "Review round 1 of version 1 recalled" in body
    assert 'id="round-recalled"' in body and "Wrong market" in body
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.CHANGES_REQUESTED


def test_reviewers_are_not_offered_the_recall(client, in_review, legal):
    page = login(client, legal).get(reverse("library:module_detail", args=[in_review.module_id]))
    assert 'id="recall-form"' not in page.content.decode()
    refused = client.post(
        reverse("review:module_recall", args=[in_review.module_id]), {"reason": "x"}
    )
    assert refused.status_code == 403


def test_authors_are_not_offered_withdrawal(client, approved, author):
    page = login(client, author).get(reverse("library:module_detail", args=[approved.module_id]))
    assert 'id="withdraw-form"' not in page.content.decode()


# --- dashboard -----------------------------------------------------------------------------


def test_dashboard_charts_cycle_time_first_pass_and_open_tasks(
    client, approved, author, legal, admin_user
):
    sent_back = make_module(author)
    submit(sent_back)
    send_back(sent_back, "legal", legal, comment="No.")
    submit(make_module(author))

    response = login(client, admin_user).get(reverse("review:dashboard"))
    body = response.content.decode()

    assert response.status_code == 200
    # Cycle time per week and per role, rounds per approval, first pass, open tasks.
    assert body.count("<svg") == 5
    week = response.context["metrics"]["cycle_time"][0]["week"]
    assert week in body
    # Legal approved one of two first-round decisions; medical and regulatory both of theirs.
    assert "50% (1/2)" in body and "100% (2/2)" in body
    assert 'id="kpi-open">3<' in body


# --- helpers -------------------------------------------------------------------------------


def test_highlight_segments_give_back_the_text_and_cover_overlaps():
    text = "Fewer cardiac events in year one."
    first = (text.index("cardiac"), text.index(" in"), 1)
    second = (text.index("events"), text.index(" one"), 2)
    parts = highlight_segments(text, [first, second])
    assert "".join(p.text for p in parts) == text
    assert [(p.text, p.annotation_ids) for p in parts if p.marked] == [
        ("cardiac ", [1]),
        ("events", [1, 2]),
        (" in year", [2]),
    ]


def test_browser_offsets_map_over_crlf_and_pass_out_of_range_through():
    raw = "a\r\nb\r\nc"
    assert browser_offsets_to_raw(raw, 2, 3) == (3, 4)
    assert browser_offsets_to_raw(raw, 4, 5) == (6, 7)
    assert browser_offsets_to_raw(raw, 2, 99) == (2, 99)


def test_diff_shows_a_rewritten_phrase_as_one_deletion_and_one_insertion():
    from content_modules.review.diff import text_diff
    from content_modules.review.pages import coalesce_opcodes

    old = "Patients had the best outcomes ever over three years."
    new = "Patients had 24% fewer events over three years."
    ops = coalesce_opcodes(text_diff(old, new))

    assert [o for o in ops if o["op"] != "equal"] == [
        {"op": "replace", "old": "the best outcomes ever", "new": "24% fewer events"}
    ]
    assert "".join(o["old"] for o in ops) == old
    assert "".join(o["new"] for o in ops) == new


@pytest.mark.parametrize("threads", [1, 8])
def test_review_page_query_count_does_not_grow_with_comments(
    client, in_review, legal, medical, threads, django_assert_max_num_queries
):
    from content_modules.review.services import annotation_create

    for i in range(threads):
        root = annotation_create(
            actor=legal, version=in_review, field="body", start=i, end=i + 5, text=f"Note {i}"
        )
        annotation_create(actor=medical, version=in_review, text="Reply", parent=root)
    client = login(client, legal)
    url = reverse("review:task", args=[task_for(in_review, "legal").pk])
    # 17 for the page itself (2 of them the decision policy: editors, signatures in another
    # role), 3 for the "reuse approved content" panel (claims and their vectors), 1 for the
    # claims panel (claim links with their references), 3 for the pre-review checks (brand
    # policy, prohibited phrases, whether anything approved could be resembled).
    with django_assert_max_num_queries(24):
        response = client.get(url)
    assert len(response.context["threads"]) == threads
    assert response.content.decode().count('class="comment reply"') == threads


def test_admin_reassigns_a_task_from_the_review_page(client, in_review, admin_user, legal):
    second_legal = make_user(Role.LEGAL, first_name="Lara", last_name="Law")
    task = task_for(in_review, "legal")
    client = login(client, admin_user)
    page = client.get(reverse("review:task", args=[task.pk])).content.decode()
    assert 'id="reassign"' in page and "Lara Law" in page

    response = client.post(
        reverse("review:task_reassign", args=[task.pk]), {"assignee": second_legal.pk}, follow=True
    )

    task.refresh_from_db()
    assert task.assignee == second_legal
    assert "now assigned to Lara Law" in response.content.decode()
    # The other legal reviewer no longer sees it in their queue.
    queue = login(client, legal).get(reverse("review:queue"))
    assert queue.context["page"].paginator.count == 0


def test_reviewers_get_no_reassign_form_and_cannot_reassign(client, in_review, legal):
    task = task_for(in_review, "legal")
    client = login(client, legal)
    page = client.get(reverse("review:task", args=[task.pk])).content.decode()
    assert 'id="reassign"' not in page
    response = client.post(
        reverse("review:task_reassign", args=[task.pk]), {"assignee": legal.pk}, follow=True
    )
    task.refresh_from_db()
    assert task.assignee is None
    assert "Only admins reassign" in response.content.decode()


def test_module_page_links_a_reviewer_to_their_open_task(client, in_review, legal):
    page = login(client, legal).get(reverse("library:module_detail", args=[in_review.module_id]))
    body = page.content.decode()
    assert 'id="review-this"' in body
    assert reverse("review:task", args=[task_for(in_review, "legal").pk]) in body
    assert 'id="submit-for-review"' not in body


def test_review_page_diffs_against_last_approved_and_previous_versions(
    client, author, medical, legal, regulatory
):
    from tests.review.helpers import approve_all

    v1 = approve_all(make_module(author, title="Outcomes"), medical, legal, regulatory)
    module_edit(actor=author, module=v1.module, changes={"headline": "Second headline"})
    v2 = ModuleVersion.objects.get(module=v1.module, number=2)
    submit(v2)
    send_back(v2, "legal", legal, comment="Also fix the call to action.")
    module_edit(actor=author, module=v1.module, changes={"call_to_action": "See the data"})
    v3 = ModuleVersion.objects.get(module=v1.module, number=3)
    submit(v3)

    response = login(client, legal).get(reverse("review:task", args=[task_for(v3, "legal").pk]))

    diffs = {d["key"]: d for d in response.context["diffs"]}
    assert diffs["approved"]["old"] == v1 and diffs["previous"]["old"] == v2
    assert {r["name"] for r in diffs["approved"]["rows"]} == {"headline", "call_to_action"}
    assert {r["name"] for r in diffs["previous"]["rows"]} == {"call_to_action"}
    body = response.content.decode()
    assert "Against the last approved version (1)" in body
    assert "Against the previous version (2, changes requested)" in body
    inserted = re.findall(r'<ins class="diff-ins">([^<]*)</ins>', body)
    assert "See" in inserted and "data" in inserted


def test_review_page_shows_the_approved_claims_this_one_resembles(client, author, legal):
    from content_modules.affinity.embeddings import embed_versions
    from tests.factories import force_status

    approved = make_module(
        author,
        title="Approved efficacy claim",
        key_message="CardioZen reduced major cardiac events by 24% versus placebo.",
    )
    force_status(approved, VersionStatus.APPROVED)
    draft = make_module(
        author, key_message="CardioZen cut major cardiac events by a quarter versus placebo."
    )
    embed_versions([approved.pk, draft.pk])
    submit(draft)

    login(client, legal)
    html = client.get(reverse("review:task", args=[task_for(draft, "legal").pk])).content.decode()

    assert "Reuse approved content" in html
    assert f'data-module="{approved.module_id}"' in html
