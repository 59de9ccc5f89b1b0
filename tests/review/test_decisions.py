"""Deciding review tasks: approvals, requests for changes, rejections, signatures."""

import pytest
from django.core import mail
from django.db import connection

from content_modules.accounts.models import AuthFailure
from content_modules.audit.models import AuditEntry
from content_modules.errors import Conflict, InvalidInput, PermissionDenied
from content_modules.library.models import ModuleVersion, Reference, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.models import (
    Review,
    ReviewStatus,
    ReviewTask,
    Signature,
    SignatureMeaning,
    TaskStatus,
)
from content_modules.review.services import review_recall, task_decide
from tests.factories import PASSWORD, make_module, make_user

from .helpers import approve_all, decide, open_tasks, send_back, submit, task_for


@pytest.fixture
def in_review(author):
    version = make_module(author)
    submit(version)
    return version


def _counts():
    return {
        "signatures": Signature.objects.count(),
        "audit": AuditEntry.objects.count(),
        "open_tasks": ReviewTask.objects.filter(status=TaskStatus.OPEN).count(),
    }


def test_version_is_approved_once_every_role_approved(
    in_review, medical, legal, regulatory, django_capture_on_commit_callbacks
):
    decide(in_review, "medical", medical)
    decide(in_review, "legal", legal)
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW

    with django_capture_on_commit_callbacks(execute=True):
        decide(in_review, "regulatory", regulatory)

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.APPROVED
    assert in_review.approved_at is not None
    assert Review.objects.get(version=in_review).status == ReviewStatus.APPROVED
    assert ModuleVersion.objects.approved_now().filter(pk=in_review.pk).exists()
    assert [m.subject for m in mail.outbox if m.subject.startswith("Approved")]


def test_signature_records_name_meaning_utc_time_and_content_hash(in_review, medical):
    signature = decide(in_review, "medical", medical)

    in_review.refresh_from_db()
    assert signature.printed_name == "Mia Medical"
    assert signature.meaning == SignatureMeaning.APPROVED
    assert signature.role == "medical"
    assert signature.content_hash == in_review.content_hash == in_review.compute_content_hash()
    assert signature.signed_at.utcoffset().total_seconds() == 0
    assert signature.manifestation().startswith("Mia Medical, ")
    assert signature.manifestation().endswith(" UTC, Approved")


def test_request_changes_keeps_the_round_open_until_every_role_decided(
    in_review, author, medical, regulatory, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        decide(in_review, "legal", make_user("legal_reviewer"), "request_changes", comment="Fix")

    # The other roles still review this round; the authors hear nothing yet.
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW
    assert sorted(t.role for t in open_tasks(in_review)) == ["medical", "regulatory"]
    assert Review.objects.get(version=in_review).status == ReviewStatus.OPEN
    assert not mail.outbox

    with django_capture_on_commit_callbacks(execute=True):
        decide(in_review, "medical", medical, "request_changes", comment="Cite the trial")
        decide(in_review, "regulatory", regulatory)

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.CHANGES_REQUESTED
    statuses = dict(ReviewTask.objects.filter(version=in_review).values_list("role", "status"))
    assert statuses == {
        "legal": TaskStatus.CHANGES_REQUESTED,
        "medical": TaskStatus.CHANGES_REQUESTED,
        "regulatory": TaskStatus.APPROVED,
    }
    assert Review.objects.get(version=in_review).status == ReviewStatus.CHANGES_REQUESTED
    # One email at close hands every role's feedback to the author together.
    [message] = mail.outbox
    assert message.subject.startswith("Changes requested")
    assert author.email in message.to
    assert "Fix" in message.body and "Cite the trial" in message.body
    assert "Regulatory: Approved by Rita Regulatory" in message.body
    entry = AuditEntry.objects.get(action="version.changes_requested")
    assert entry.data["comments"] == {"legal": "Fix", "medical": "Cite the trial"}


def test_any_rejection_rejects_the_round_once_every_role_decided(
    in_review, medical, legal, regulatory
):
    decide(in_review, "regulatory", regulatory, "reject", comment="Off-label claim")
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW

    decide(in_review, "legal", legal, "request_changes", comment="Qualify")
    decide(in_review, "medical", medical)

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.REJECTED
    assert open_tasks(in_review) == []
    assert Review.objects.get(version=in_review).status == ReviewStatus.REJECTED
    assert not ReviewTask.objects.filter(status=TaskStatus.CANCELLED).exists()


def test_author_recalls_an_open_round_with_a_reason(
    in_review, author, legal, django_capture_on_commit_callbacks
):
    decide(in_review, "legal", legal, "request_changes", comment="Qualify the claim")

    with django_capture_on_commit_callbacks(execute=True):
        review = review_recall(actor=author, module=in_review.module, reason="  Wrong market  ")

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.CHANGES_REQUESTED
    assert (review.status, review.closed_by, review.close_reason) == (
        ReviewStatus.RECALLED,
        author,
        "Wrong market",
    )
    statuses = dict(ReviewTask.objects.filter(version=in_review).values_list("role", "status"))
    assert statuses == {
        "legal": TaskStatus.CHANGES_REQUESTED,
        "medical": TaskStatus.CANCELLED,
        "regulatory": TaskStatus.CANCELLED,
    }
    entry = AuditEntry.objects.get(action="review.recalled")
    assert entry.actor == author
    assert entry.data["reason"] == "Wrong market"
    assert entry.data["decided"] == {"legal": "changes_requested"}
    assert AuditEntry.objects.filter(action="task.cancelled").count() == 2
    [message] = [m for m in mail.outbox if m.subject.startswith("Changes requested")]
    assert "Wrong market" in message.body and "Qualify the claim" in message.body
    # The author revises at once: the next version is a draft.
    v2 = module_edit(actor=author, module=in_review.module, changes={"title": "Revised"})
    assert (v2.number, v2.status) == (2, VersionStatus.DRAFT)


def test_recall_after_a_rejection_rejects(in_review, admin_user, regulatory):
    decide(in_review, "regulatory", regulatory, "reject", comment="Off-label")

    review_recall(actor=admin_user, module=in_review.module, reason="Stop the round")

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.REJECTED


def test_recall_needs_a_reason_and_an_author_or_admin(in_review, legal):
    before = _counts()

    with pytest.raises(InvalidInput) as err:
        review_recall(actor=in_review.created_by, module=in_review.module, reason="  ")
    assert err.value.field == "reason"
    with pytest.raises(PermissionDenied):
        review_recall(actor=legal, module=in_review.module, reason="Not mine to recall")
    with pytest.raises(PermissionDenied):
        review_recall(actor=make_user("author"), module=in_review.module, reason="Not my module")

    assert _counts() == before
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW


def test_recall_without_an_open_round_is_a_conflict(author):
    draft = make_module(author)

    with pytest.raises(Conflict) as err:
        review_recall(actor=author, module=draft.module, reason="Nothing to recall")
    assert err.value.field == "status"


def test_request_changes_needs_a_comment(in_review, legal):
    with pytest.raises(InvalidInput) as err:
        decide(in_review, "legal", legal, "request_changes", comment="  ")
    assert err.value.field == "comment"
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_unknown_decision_is_refused_naming_the_field(in_review, legal):
    with pytest.raises(InvalidInput) as err:
        decide(in_review, "legal", legal, "maybe")
    assert err.value.field == "decision"


@pytest.mark.parametrize("password", ["wrong-password", "", None])
def test_wrong_or_missing_password_records_only_the_failed_attempt(in_review, legal, password):
    before = _counts()

    with pytest.raises(PermissionDenied) as err:
        decide(in_review, "legal", legal, password=password)

    assert err.value.field == "password"
    # Nothing but the failed attempt's own audit entry (Part 11 §11.300(d))
    assert _counts() == {**before, "audit": before["audit"] + 1}
    assert AuditEntry.objects.order_by("-seq").first().action == "signature.failed"
    assert AuthFailure.objects.filter(user=legal, kind=AuthFailure.Kind.SIGNATURE).count() == 1
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_failed_signatures_count_toward_lockout(in_review, legal, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    for _ in range(3):
        with pytest.raises(PermissionDenied):
            decide(in_review, "legal", legal, password="nope")

    with pytest.raises(PermissionDenied) as err:
        decide(in_review, "legal", legal)  # even the right password is locked out now

    assert "locked" in err.value.message
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_deciding_a_closed_task_is_a_conflict(in_review, legal):
    decide(in_review, "legal", legal)
    before = _counts()

    with pytest.raises(Conflict):
        decide(in_review, "legal", legal)

    assert _counts() == before


def test_a_reviewer_cannot_decide_a_task_of_another_role(in_review, legal):
    with pytest.raises(PermissionDenied) as err:
        decide(in_review, "medical", legal)

    assert err.value.field == "role"
    assert task_for(in_review, "medical").status == TaskStatus.OPEN


def test_author_cannot_approve_own_version(author):
    # An author who also holds a reviewer role still may not review their own work.
    author.groups.add(*make_user("medical_reviewer").groups.all())
    version = make_module(author)
    submit(version)

    with pytest.raises(PermissionDenied):
        decide(version, "medical", author)
    assert task_for(version, "medical").status == TaskStatus.OPEN


def test_an_editor_of_the_version_cannot_approve_it(author):
    version = make_module(author)
    # An admin may edit any module; this one also holds the legal reviewer role.
    editor = make_user("admin")
    editor.groups.add(*make_user("legal_reviewer").groups.all())
    module_edit(actor=editor, module=version.module, changes={"title": "Edited"})
    submit(version)

    with pytest.raises(PermissionDenied):
        decide(version, "legal", editor)
    assert task_for(version, "legal").status == TaskStatus.OPEN


def test_one_person_fills_at_most_one_role_on_a_version(in_review):
    both = make_user("medical_reviewer")
    both.groups.add(*make_user("legal_reviewer").groups.all())
    decide(in_review, "medical", both)

    with pytest.raises(PermissionDenied):
        decide(in_review, "legal", both)
    assert task_for(in_review, "legal").status == TaskStatus.OPEN


def test_medical_approval_requires_every_reference_checked(author, medical):
    ref1 = Reference.objects.create(citation="Trial A, NEJM 2025", created_by=author)
    ref2 = Reference.objects.create(citation="Trial B, Lancet 2024", created_by=author)
    version = make_module(author, references=[ref1, ref2])
    submit(version)

    with pytest.raises(InvalidInput) as err:
        decide(version, "medical", medical, checked_reference_ids=[ref1.pk])
    assert err.value.field == "checked_references"
    assert task_for(version, "medical").status == TaskStatus.OPEN
    assert not task_for(version, "medical").reference_checks.exists()

    decide(version, "medical", medical, checked_reference_ids=[ref1.pk, ref2.pk])
    task = task_for(version, "medical")
    assert task.status == TaskStatus.APPROVED
    assert set(task.reference_checks.values_list("reference_id", flat=True)) == {ref1.pk, ref2.pk}


def test_checking_a_reference_the_version_does_not_cite_is_refused(in_review, medical, author):
    stranger = Reference.objects.create(citation="Unrelated", created_by=author)
    with pytest.raises(InvalidInput) as err:
        decide(in_review, "medical", medical, checked_reference_ids=[stranger.pk])
    assert err.value.field == "checked_references"


def test_an_assigned_task_is_decided_by_its_assignee_only(in_review, admin_user, legal):
    from content_modules.review.services import task_reassign

    other_legal = make_user("legal_reviewer")
    task_reassign(actor=admin_user, task=task_for(in_review, "legal"), assignee=other_legal)

    with pytest.raises(PermissionDenied):
        decide(in_review, "legal", legal)
    decide(in_review, "legal", other_legal)
    assert task_for(in_review, "legal").decided_by == other_legal


def test_resubmission_opens_a_new_review_where_every_role_reviews_again(
    author, medical, legal, regulatory
):
    v1 = make_module(author)
    submit(v1)
    decide(v1, "medical", medical)
    send_back(v1, "legal", legal, comment="Soften the claim")

    v2 = module_edit(actor=author, module=v1.module, changes={"key_message": "Softer claim."})
    assert v2.number == 2 and v2.status == VersionStatus.DRAFT
    review = submit(v2)

    # Rounds are numbered per version: the first review of version 2 is its round 1.
    assert (review.version.number, review.round) == (2, 1)
    assert sorted(t.role for t in open_tasks(v2)) == ["legal", "medical", "regulatory"]
    approve_all(v2, medical, legal, regulatory)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.status == VersionStatus.CHANGES_REQUESTED
    assert v2.status == VersionStatus.APPROVED


def test_approving_a_new_version_supersedes_the_old_one(author, medical, legal, regulatory):
    v1 = approve_all(make_module(author), medical, legal, regulatory)
    v2 = module_edit(actor=author, module=v1.module, changes={"headline": "New headline"})
    submit(v2)
    decide(v2, "medical", medical)
    decide(v2, "legal", legal)
    assert v1.module.approved_version() == v1

    decide(v2, "regulatory", regulatory)

    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.status, v2.status) == (VersionStatus.SUPERSEDED, VersionStatus.APPROVED)
    assert v1.module.approved_version() == v2
    assert AuditEntry.objects.filter(action="version.superseded", version_id=v1.pk).exists()


def test_an_approval_signed_on_an_older_content_hash_never_counts(
    in_review, medical, legal, regulatory
):
    decide(in_review, "medical", medical)
    # Content changing under a review bypasses every action (raw SQL, a faulty
    # migration); the completion check must still see the hash no longer matches.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE library_moduleversion SET body = %s WHERE id = %s",
            ["Changed after medical signed.", in_review.pk],
        )
    decide(in_review, "legal", legal)

    decide(in_review, "regulatory", regulatory)

    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW
    medical_task = task_for(in_review, "medical")
    assert medical_task.status == TaskStatus.OPEN
    assert AuditEntry.objects.filter(action="task.reopened", object_id=str(medical_task.pk))
    # The medical reviewer signs again on the current content: now it is approved.
    decide(in_review, "medical", medical)
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.APPROVED
    current = in_review.compute_content_hash()
    latest = {
        s.role: s.content_hash for s in Signature.objects.filter(version=in_review).order_by("id")
    }
    assert latest == {"medical": current, "legal": current, "regulatory": current}


def test_admin_without_a_reviewer_role_cannot_decide(in_review, admin_user):
    with pytest.raises(PermissionDenied):
        task_decide(
            actor=admin_user,
            task=task_for(in_review, "legal"),
            decision="approve",
            password=PASSWORD,
        )


def test_a_reviewer_marks_references_checked_one_by_one(author, medical, legal):
    from content_modules.review.services import reference_check_mark

    ref = Reference.objects.create(citation="Trial A", created_by=author)
    stranger = Reference.objects.create(citation="Unrelated", created_by=author)
    version = make_module(author, references=[ref])
    submit(version)
    task = task_for(version, "medical")

    check = reference_check_mark(actor=medical, task=task, reference=ref)
    again = reference_check_mark(actor=medical, task=task, reference=ref)

    assert again == check and check.checked_by == medical
    assert AuditEntry.objects.filter(action="reference.checked").count() == 1
    with pytest.raises(InvalidInput):
        reference_check_mark(actor=medical, task=task, reference=stranger)
    with pytest.raises(PermissionDenied):
        reference_check_mark(actor=legal, task=task, reference=ref)
    decide(version, "medical", medical)  # already checked: approval needs nothing more
    assert task_for(version, "medical").status == TaskStatus.APPROVED
