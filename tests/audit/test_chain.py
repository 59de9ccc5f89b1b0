"""The audit trail is hash-chained and verify_audit finds a tampered row (invariant 6)."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_verify
from tests.factories import make_module


@pytest.mark.django_db
def test_every_entry_links_to_the_previous_one(author):
    make_module(author)
    make_module(author)

    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == "0" * 64
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.entry_hash
    assert audit_verify().ok


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The append-only trigger refuses this; a superuser bypassing it is what we detect.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_verify_audit_reports_a_row_changed_by_raw_sql(author):
    make_module(author)
    make_module(author)
    target = AuditEntry.objects.order_by("seq")[1]

    _tamper("UPDATE audit_auditentry SET action = %s WHERE id = %s", ["forged", target.pk])

    result = audit_verify()
    assert not result.ok and result.broken_seq == target.seq
    with pytest.raises(CommandError, match=f"BROKEN at entry #{target.seq}"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_reports_a_deleted_row(author):
    for _ in range(3):
        make_module(author)
    target = AuditEntry.objects.order_by("seq")[1]

    _tamper("DELETE FROM audit_auditentry WHERE id = %s", [target.pk])

    result = audit_verify()
    assert not result.ok and result.broken_seq == target.seq
