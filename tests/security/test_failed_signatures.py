"""Failed e-signatures are recorded for good and reported (issue 11 point 6, Part 11 §11.300(d))."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from content_modules.accounts.models import AuthFailure
from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_verify
from content_modules.review.services import version_submit
from tests.factories import PASSWORD, api_client, make_module
from tests.review.helpers import approve_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(author):
    review = version_submit(actor=author, module=make_module(author).module)
    return review.tasks.get(role="medical")


def sign(user, task, password, ip="192.0.2.40"):
    return api_client(user).post(
        f"/api/v1/reviews/{task.pk}/decision",
        {"decision": "approve", "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_a_wrong_signing_password_is_audited_with_who_which_task_and_version_and_where(
    medical, task
):
    # When the reviewer signs with a wrong password
    response = sign(medical, task, "not-my-password")
    assert response.status_code == 403
    # Then the audit trail names who, which task and version, when and from where
    entry = AuditEntry.objects.get(action="signature.failed")
    assert entry.actor == medical
    assert (entry.object_type, entry.object_id) == ("review.reviewtask", str(task.pk))
    assert entry.version_id == task.version_id and entry.module_id == task.version.module_id
    assert entry.data["version"] == task.version.number and entry.data["task"] == task.pk
    assert entry.data["intent"] == "approve" and entry.data["reason"] == "wrong_password"
    assert entry.data["client_ip"] == "192.0.2.40"
    assert entry.occurred_at is not None
    assert audit_verify().ok


def test_the_failure_stays_after_the_next_successful_signature_and_login(medical, task):
    sign(medical, task, "not-my-password")
    # When the reviewer then signs correctly and logs in
    assert sign(medical, task, PASSWORD).status_code == 200
    Client().post("/accounts/login/", {"username": medical.username, "password": PASSWORD})
    # Then neither the audit entry nor the failure log row is gone
    assert AuditEntry.objects.filter(action="signature.failed", actor=medical).count() == 1
    assert AuthFailure.objects.filter(user=medical, kind=AuthFailure.Kind.SIGNATURE).count() == 1


def test_a_wrong_withdrawal_password_is_audited(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    response = api_client(medical).post(
        f"/api/v1/modules/{version.module_id}/withdraw",
        {"reason": "New safety data", "password": "wrong"},
        format="json",
    )
    assert response.status_code == 403
    entry = AuditEntry.objects.get(action="signature.failed")
    assert entry.actor == medical and entry.version_id == version.pk
    assert entry.data["intent"] == "withdraw" and entry.data["reason"] == "wrong_password"


def test_a_locked_signer_s_attempts_are_audited_too(medical, task, settings):
    settings.LOCKOUT_MAX_FAILURES = 2
    for _ in range(3):
        sign(medical, task, "wrong")
    reasons = list(
        AuditEntry.objects.filter(action="signature.failed")
        .order_by("seq")
        .values_list("data__reason", flat=True)
    )
    assert reasons == ["wrong_password", "wrong_password", "locked"]


def test_failed_signatures_show_in_the_module_trail_and_the_audit_exports(
    author, medical, task, admin_user
):
    sign(medical, task, "wrong")
    module_id = task.version.module_id
    # The module's audit trail (API)
    trail = api_client(author).get(f"/api/v1/modules/{module_id}/audit").json()["results"]
    assert "signature.failed" in [e["action"] for e in trail]
    # The module's history page
    client = Client()
    client.force_login(author)
    assert (
        "signature.failed" in client.get(f"/review/modules/{module_id}/history/").content.decode()
    )
    # The CSV export command, for the whole trail and for the module
    for args in ([], ["--module", str(module_id)]):
        out = io.StringIO()
        call_command("export_audit", *args, stdout=out)
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        failed = [r for r in rows if r["action"] == "signature.failed"]
        assert len(failed) == 1 and "192.0.2.40" in failed[0]["data"]
    # The CSV download
    response = api_client(admin_user).get("/api/v1/audit.csv")
    assert "signature.failed" in b"".join(response.streaming_content).decode()


def test_repeated_failed_signatures_email_the_admins(
    medical, task, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.SIGNATURE_FAILURE_ALERT_AFTER = 3
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sign(medical, task, "wrong")
        sign(medical, task, "wrong")
    assert mail.outbox == []
    # When the third failure comes
    with django_capture_on_commit_callbacks(execute=True):
        sign(medical, task, "wrong")
    # Then the admins are told, once, who failed and where
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [admin_user.email]
    assert "Mia Medical" in message.subject
    assert "3 times" in message.body and "192.0.2.40" in message.body
