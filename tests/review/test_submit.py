"""Submitting a draft opens one review with a task per required role."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from content_modules.audit.models import AuditEntry
from content_modules.errors import Conflict, PermissionDenied
from content_modules.library.models import Brand, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.models import Review, ReviewStatus, ReviewTask, TaskStatus
from content_modules.review.services import add_business_days, version_submit
from tests.factories import make_module

from .helpers import submit


def test_submit_moves_draft_to_review_and_opens_one_task_per_role(author):
    version = make_module(author)

    review = submit(version)

    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW
    assert version.submitted_at is not None
    assert review.status == ReviewStatus.OPEN and review.round == 1
    tasks = ReviewTask.objects.filter(review=review)
    assert sorted(t.role for t in tasks) == ["legal", "medical", "regulatory"]
    assert {t.status for t in tasks} == {TaskStatus.OPEN}
    entry = AuditEntry.objects.filter(action="version.submitted", version_id=version.pk).get()
    assert entry.data["to"] == "in_review" and entry.actor_id == author.pk


def test_brand_review_roles_decide_which_tasks_open(author, vocabulary):
    Brand.objects.filter(slug="neurolift").update(review_roles=["medical", "regulatory"])
    version = make_module(author, brand="neurolift")

    review = submit(version)

    assert sorted(review.tasks.values_list("role", flat=True)) == ["medical", "regulatory"]


def test_tasks_are_due_five_business_days_after_submission(author):
    version = make_module(author)

    review = submit(version)

    task = review.tasks.first()
    assert task.due_at == add_business_days(review.submitted_at, 5)
    assert (task.due_at - review.submitted_at) >= timedelta(days=5)


def test_due_days_come_from_settings(author, settings):
    settings.REVIEW_DUE_BUSINESS_DAYS = 2
    version = make_module(author)

    review = submit(version)

    assert review.tasks.first().due_at == add_business_days(review.submitted_at, 2)


def test_business_days_skip_the_weekend():
    friday = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert add_business_days(friday, 1) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert add_business_days(friday, 5) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_submitting_a_version_already_in_review_is_a_conflict(author):
    version = make_module(author)
    submit(version)

    with pytest.raises(Conflict):
        submit(version)

    assert Review.objects.filter(version=version).count() == 1


def test_only_the_modules_authors_or_an_admin_submit(author, other_author, medical, admin_user):
    version = make_module(author)

    for outsider in (other_author, medical):
        with pytest.raises(PermissionDenied):
            version_submit(actor=outsider, module=version.module)
    version.refresh_from_db()
    assert version.status == VersionStatus.DRAFT

    version_submit(actor=admin_user, module=version.module)
    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW


def test_an_author_cannot_edit_while_in_review(author):
    version = make_module(author)
    submit(version)

    with pytest.raises(Conflict):
        module_edit(actor=author, module=version.module, changes={"title": "Sneaky"})

    version.refresh_from_db()
    assert version.title != "Sneaky"


def test_database_allows_one_open_review_per_version(author):
    version = make_module(author)
    review = submit(version)

    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(version=version, submitted_by=author)

    assert Review.objects.filter(version=version, status=ReviewStatus.OPEN).get() == review
