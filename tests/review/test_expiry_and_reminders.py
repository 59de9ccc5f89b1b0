"""Expiry (at query time and by the beat task) and overdue reminders.

The beat tasks run in this process with ``apply()``: the data lives in the test's
transaction, which a separate worker (CI has Redis) could not see.
"""

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from content_modules.audit.models import AuditEntry
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.review.models import ExpiryNotice, ReviewTask
from content_modules.review.tasks import expire_versions, remind_overdue_tasks
from tests.factories import api_client, make_module, make_user

from .helpers import approve_all, decide, submit, task_for


def _approved(author, medical, legal, regulatory, **overrides):
    return approve_all(make_module(author, **overrides), medical, legal, regulatory)


def test_expired_content_is_not_served_even_before_the_job_runs(author, medical, legal, regulatory):
    version = _approved(author, medical, legal, regulatory)
    today = timezone.localdate()
    # The expiry date passes (set as if time moved on; the job has not run).
    ModuleVersion.objects.filter(pk=version.pk).update(expires_on=today - timedelta(days=1))

    assert not ModuleVersion.objects.approved_now().filter(pk=version.pk).exists()
    assert version.module.approved_version() is None
    assert ModuleVersion.objects.get(pk=version.pk).status == VersionStatus.APPROVED


def test_expiry_job_marks_versions_expired_and_tells_owners_once(
    author, medical, legal, regulatory, django_capture_on_commit_callbacks
):
    version = _approved(author, medical, legal, regulatory)
    fresh = _approved(author, medical, legal, regulatory)
    expires_on = version.expires_on
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        result = expire_versions.apply(args=[str(expires_on + timedelta(days=1))]).get()
    with django_capture_on_commit_callbacks(execute=True):
        again = expire_versions.apply(args=[str(expires_on + timedelta(days=1))]).get()

    version.refresh_from_db()
    fresh.refresh_from_db()
    assert version.status == VersionStatus.EXPIRED
    assert result["expired"] == 2 and again["expired"] == 0
    assert AuditEntry.objects.filter(action="version.expired", version_id=version.pk).count() == 1
    expired_mail = [m for m in mail.outbox if m.subject.startswith("Expired")]
    assert len(expired_mail) == 2
    assert all(author.email in m.to for m in expired_mail)


def test_owners_are_warned_thirty_days_ahead_once_per_version(
    author, medical, legal, regulatory, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    soon = _approved(author, medical, legal, regulatory, expires_on=today + timedelta(days=20))
    later = _approved(author, medical, legal, regulatory, expires_on=today + timedelta(days=90))
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first = expire_versions.apply().get()
    with django_capture_on_commit_callbacks(execute=True):
        second = expire_versions.apply().get()

    assert (first["notified"], second["notified"]) == (1, 0)
    notices = [m for m in mail.outbox if m.subject.startswith("Expires on")]
    assert len(notices) == 1
    assert soon.title in notices[0].subject and author.email in notices[0].to
    assert ExpiryNotice.objects.filter(version=soon).exists()
    assert not ExpiryNotice.objects.filter(version=later).exists()
    soon.refresh_from_db()
    assert soon.status == VersionStatus.APPROVED


def test_an_expired_version_cannot_be_withdrawn(author, medical, legal, regulatory, engine):
    version = _approved(author, medical, legal, regulatory)
    ModuleVersion.objects.filter(pk=version.pk).update(
        expires_on=timezone.localdate() - timedelta(days=1)
    )

    response = api_client(regulatory).post(
        f"/api/v1/modules/{version.module_id}/withdraw",
        {"reason": "Expired anyway", "password": "correct-horse-battery-staple"},
        format="json",
    )

    assert response.status_code == 409  # nothing approved now: nothing to withdraw


def test_overdue_tasks_are_reminded_at_most_once_a_day(
    author, medical, legal, regulatory, django_capture_on_commit_callbacks
):
    version = make_module(author)
    submit(version)
    decide(version, "medical", medical)
    ReviewTask.objects.filter(version=version).update(due_at=timezone.now() - timedelta(hours=1))
    other_legal = make_user("legal_reviewer")
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        first = remind_overdue_tasks.apply(args=[now.isoformat()]).get()
    with django_capture_on_commit_callbacks(execute=True):
        same_day = remind_overdue_tasks.apply(args=[(now + timedelta(hours=5)).isoformat()]).get()
    with django_capture_on_commit_callbacks(execute=True):
        next_day = remind_overdue_tasks.apply(args=[(now + timedelta(hours=25)).isoformat()]).get()

    # Open overdue tasks: legal and regulatory; the decided medical task is not reminded.
    assert (first, same_day, next_day) == (2, 0, 2)
    reminders = [m for m in mail.outbox if m.subject.startswith("Overdue")]
    assert len(reminders) == 4
    legal_mail = [m for m in reminders if "legal" in m.subject]
    assert all({legal.email, other_legal.email} <= set(m.to) for m in legal_mail)
    assert all(author.email not in m.to for m in reminders)
    assert task_for(version, "legal").reminded_at is not None


def test_an_assigned_overdue_task_reminds_only_its_assignee(
    author, legal, admin_user, django_capture_on_commit_callbacks
):
    from content_modules.review.services import task_reassign

    version = make_module(author)
    submit(version)
    task_reassign(actor=admin_user, task=task_for(version, "legal"), assignee=legal)
    ReviewTask.objects.filter(version=version, role="legal").update(
        due_at=timezone.now() - timedelta(days=1)
    )
    make_user("legal_reviewer")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        remind_overdue_tasks.apply().get()

    [reminder] = [m for m in mail.outbox if m.subject.startswith("Overdue")]
    assert reminder.to == [legal.email]


def test_tasks_not_yet_due_are_not_reminded(author):
    submit(make_module(author))
    assert remind_overdue_tasks.apply().get() == 0
    assert mail.outbox == []
