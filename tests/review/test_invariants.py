"""Each compliance invariant 1-6 of DESIGN.md, tested through the review workflow."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from content_modules.audit.models import AuditEntry
from content_modules.errors import PermissionDenied
from content_modules.library.models import FrozenVersionError, ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.models import Signature
from content_modules.review.services import module_withdraw, review_recall, versions_expire
from tests.factories import PASSWORD, force_status, make_module

from . import invariants
from .helpers import approve_all, decide, send_back, submit

# Invariant 1 -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in VersionStatus if s != VersionStatus.APPROVED])
def test_delivery_excludes_every_state_but_approved(author, status):
    version = make_module(author)
    force_status(version, status)

    assert not ModuleVersion.objects.approved_now().filter(pk=version.pk).exists()
    assert version.module.approved_version() is None
    invariants.check_delivery()


def test_delivery_excludes_approved_content_past_its_expiry_date(author):
    today = timezone.localdate()
    expired = make_module(author)
    force_status(expired, VersionStatus.APPROVED, expires_on=today - timedelta(days=1))
    last_day = make_module(author)
    force_status(last_day, VersionStatus.APPROVED, expires_on=today)

    served = set(ModuleVersion.objects.approved_now().values_list("pk", flat=True))

    assert served == {last_day.pk}
    assert expired.module.approved_version() is None
    assert last_day.module.approved_version() == last_day
    invariants.check_delivery()


# Invariant 2 -----------------------------------------------------------------------------


def test_approved_version_keeps_serving_until_the_next_one_is_approved(
    author, medical, legal, regulatory
):
    v1 = approve_all(make_module(author), medical, legal, regulatory)
    module = v1.module

    v2 = module_edit(actor=author, module=module, changes={"headline": "Revised"})
    assert module.approved_version() == v1  # while drafted
    submit(v2)
    assert module.approved_version() == v1  # while in review
    send_back(v2, "legal", legal, comment="Not yet")
    assert module.approved_version() == v1  # after changes were requested
    v3 = module_edit(actor=author, module=module, changes={"headline": "Revised again"})
    submit(v3)
    decide(v3, "medical", medical)
    decide(v3, "legal", legal)
    assert module.approved_version() == v1  # until the last role signs

    decide(v3, "regulatory", regulatory)

    v1.refresh_from_db()
    assert v1.status == VersionStatus.SUPERSEDED
    assert module.approved_version() == v3
    invariants.check_frozen_and_supersession()
    invariants.check_delivery()


def test_an_approved_version_cannot_be_changed(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)
    version.body = "Quietly changed"

    with pytest.raises(FrozenVersionError):
        version.save()

    edited = module_edit(actor=author, module=version.module, changes={"body": "Changed"})
    assert edited.pk != version.pk and edited.number == version.number + 1
    version.refresh_from_db()
    assert version.body != "Changed" and version.status == VersionStatus.APPROVED


# Invariant 3 -----------------------------------------------------------------------------


def test_two_of_three_roles_never_approve(author, medical, legal):
    version = make_module(author)
    submit(version)
    decide(version, "medical", medical)
    decide(version, "legal", legal)

    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW
    assert not ModuleVersion.objects.approved_now().filter(pk=version.pk).exists()


def test_every_approval_is_signed_by_all_roles_on_the_approved_hash(
    author, medical, legal, regulatory
):
    version = approve_all(make_module(author), medical, legal, regulatory)

    hashes = set(Signature.objects.filter(version=version).values_list("content_hash", flat=True))
    assert hashes == {version.content_hash}
    invariants.check_approvals()


# Invariant 4 (decision-level tests are in test_decisions.py) ------------------------------


def test_segregation_holds_after_a_full_workflow(author, medical, legal, regulatory):
    approve_all(make_module(author), medical, legal, regulatory)
    invariants.check_segregation()


# Invariant 5 -----------------------------------------------------------------------------


def test_withdrawal_is_signed_with_reason_and_bound_hash(author, medical, legal, regulatory):
    version = approve_all(make_module(author), medical, legal, regulatory)

    signature = module_withdraw(
        actor=medical, module=version.module, reason="New safety data", password=PASSWORD
    )

    assert signature.meaning == "withdrawn"
    assert signature.printed_name == "Mia Medical"
    assert signature.content_hash == version.content_hash
    assert signature.reason == "New safety data"
    invariants.check_signatures()


def test_every_failed_signing_attempt_is_in_the_audit_trail(author, medical, legal, regulatory):
    # Given a wrong password at a decision and at a withdrawal, and a missing one
    pending = make_module(author)
    submit(pending)
    approved = approve_all(make_module(author), medical, legal, regulatory)
    for password in ("wrong", ""):
        with pytest.raises(PermissionDenied):
            decide(pending, "legal", legal, password=password)
    with pytest.raises(PermissionDenied):
        module_withdraw(actor=medical, module=approved.module, reason="Test", password="wrong")
    # Then each attempt has its audit entry, and the invariant check holds
    failed = AuditEntry.objects.filter(action="signature.failed")
    assert sorted(failed.values_list("version_id", flat=True)) == sorted(
        [pending.pk, pending.pk, approved.pk]
    )
    invariants.check_signatures()
    invariants.check_audit()


# Invariant 6 -----------------------------------------------------------------------------


def test_every_workflow_step_writes_a_chained_audit_entry_and_verify_passes(
    author, medical, legal, regulatory, admin_user, capsys
):
    v1 = make_module(author)
    submit(v1)
    send_back(v1, "legal", legal, comment="Fix")
    v2 = module_edit(actor=author, module=v1.module, changes={"title": "Fixed"})
    approve_all(v2, medical, legal, regulatory)
    module_withdraw(actor=admin_user, module=v2.module, reason="Recall", password=PASSWORD)
    expiring = approve_all(make_module(author), medical, legal, regulatory)
    versions_expire(today=expiring.expires_on + timedelta(days=1))
    recalled = make_module(author)
    submit(recalled)
    review_recall(actor=author, module=recalled.module, reason="Wrong market")

    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {
        "version.submitted",
        "signature.applied",
        "task.decided",
        "task.cancelled",
        "review.recalled",
        "version.changes_requested",
        "version.approved",
        "version.withdrawn",
        "version.expired",
    } <= actions
    invariants.check_all()
    call_command("verify_audit")
    assert "Audit trail OK" in capsys.readouterr().out
