"""The audit trail's action names are one typed enum, with the values stored since day one."""

from __future__ import annotations

import pytest

from content_modules.audit.actions import AuditAction
from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_record, audit_verify
from content_modules.library.models import VersionStatus

pytestmark = pytest.mark.django_db


def test_an_action_outside_the_enum_is_refused_and_nothing_is_written(author):
    with pytest.raises(ValueError, match="Unknown audit action 'version.aproved'"):
        audit_record(actor=author, action="version.aproved", object_type="x", object_id=1)

    assert not AuditEntry.objects.filter(action="version.aproved").exists()


def test_every_entry_written_has_an_action_of_the_enum_and_the_chain_verifies(author):
    # Given entries written through the enum (and one by its plain stored value)
    audit_record(
        actor=author,
        action=AuditAction.TAG_CREATED,
        object_type="t",
        object_id=1,
        data={"kind": "theme", "slug": "outcomes"},
    )
    audit_record(
        actor=author,
        action="webhook.deleted",
        object_type="w",
        object_id=2,  # type: ignore[arg-type]
        data={"url": "https://example.test/hook"},
    )

    # Then the stored values are the strings the trail has always held, and it verifies
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [
        "tag.created",
        "webhook.deleted",
    ]
    assert set(AuditEntry.objects.values_list("action", flat=True)) <= set(AuditAction.values)
    assert audit_verify().ok


def test_stored_values_are_unchanged():
    # Old rows (and the HMAC chain over them) carry exactly these strings.
    assert AuditAction.VERSION_APPROVED == "version.approved"
    assert AuditAction.SIGNATURE_APPLIED.value == "signature.applied"
    assert AuditAction.AUDIT_CHAIN_KEYED == "audit.chain_keyed"
    assert AuditAction("affinity.training_not_queued")  # written by earlier code


def test_every_version_status_a_version_moves_to_has_its_action():
    moved_to = set(VersionStatus.values) - {VersionStatus.DRAFT, VersionStatus.IN_REVIEW}
    assert {AuditAction(f"version.{status}") for status in moved_to}
    assert {AuditAction(f"admin.{verb}") for verb in ("added", "changed", "deleted")}
