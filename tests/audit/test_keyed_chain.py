"""The chain is keyed with AUDIT_HMAC_KEY; entries written before keying stay anchored by it."""

from __future__ import annotations

import importlib
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import override_settings

from content_modules.audit import tasks
from content_modules.audit.checkpoints import (
    ChainBrokenError,
    checkpoint_write,
    checkpoints_load,
)
from content_modules.audit.models import AuditChainHead, AuditEntry
from content_modules.audit.services import (
    CHAIN_KEYED_ACTION,
    GENESIS_HASH,
    audit_verify,
    chain_key,
    compute_hash,
    entry_hash_of,
)
from tests.audit.support import make_trail, manage

pytestmark = pytest.mark.django_db

key_the_chain = importlib.import_module(
    "content_modules.audit.migrations.0003_keyed_chain_and_truncate_guard"
).key_the_chain


def _tamper(sql: str, params: list) -> None:
    """Raw SQL past the append-only triggers (as a superuser can), on either backend."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_entry_hashes_are_keyed_not_plain_sha256(author):
    entries = make_trail(author, modules=2)

    for entry in entries:
        assert entry.entry_hash == entry_hash_of(entry, key=chain_key())
        assert entry.entry_hash != entry_hash_of(entry, key=None)
    assert audit_verify().ok


def test_verify_with_another_key_than_the_trail_was_written_with_fails(author, settings):
    make_trail(author, modules=2)

    settings.AUDIT_HMAC_KEY = "another-key-than-the-one-the-trail-was-written-with"
    result = audit_verify()

    assert not result.ok and result.broken_seq == 1
    assert "AUDIT_HMAC_KEY" in result.reason


def test_the_configured_key_is_used_instead_of_the_development_default(author):
    default = chain_key()
    with override_settings(AUDIT_HMAC_KEY="k" * 40):
        configured = chain_key()
        entries = make_trail(author, modules=1)
        assert audit_verify().ok

    assert configured != default
    assert not audit_verify().ok, "written with the configured key, checked with the default"
    assert entries[0].entry_hash == entry_hash_of(entries[0], key=configured)


def _write_unkeyed_entries(count: int) -> list[AuditEntry]:
    """Entries as the code before the keyed chain wrote them (plain sha256)."""
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "occurred_at": datetime(2026, 1, seq, 9, 0, tzinfo=UTC),
            "actor_id": None,
            "actor_name": "system",
            "action": "module.created",
            "object_type": "library.module",
            "object_id": str(seq),
            "module_id": seq,
            "version_id": None,
            "data": {"n": seq},
            "prev_hash": prev,
        }
        prev = compute_hash(**fields, key=None)
        AuditEntry.objects.create(**fields, entry_hash=prev)
    AuditChainHead.objects.update_or_create(pk=1, defaults={"last_seq": 0})
    # The head as the old code left it (the forward-only trigger guards real appends).
    _tamper(
        "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE id = 1",
        [count, prev],
    )
    return list(AuditEntry.objects.order_by("seq"))


def _run_key_migration() -> None:
    # The migration's data step reads only the schema editor's connection.
    key_the_chain(django_apps, SimpleNamespace(connection=connection))


def test_keying_migration_seals_old_unkeyed_entries_with_one_keyed_marker(author):
    old = _write_unkeyed_entries(3)

    _run_key_migration()
    _run_key_migration()  # idempotent: one marker only
    make_trail(author, modules=1)

    marker = AuditEntry.objects.get(action=CHAIN_KEYED_ACTION)
    assert marker.seq == 4 and marker.prev_hash == old[-1].entry_hash
    assert marker.data["unkeyed_through"] == 3 and marker.data["unkeyed_chain_verified"] is True
    assert marker.entry_hash == entry_hash_of(marker, key=chain_key())
    # The old rows are the record as it was: never rewritten.
    assert [e.entry_hash for e in AuditEntry.objects.filter(seq__lte=3).order_by("seq")] == [
        e.entry_hash for e in old
    ]
    result = audit_verify()
    assert result.ok and result.checked == 5


def test_rewriting_an_unkeyed_entry_and_its_plain_hashes_breaks_the_link_into_the_marker():
    old = _write_unkeyed_entries(3)
    _run_key_migration()

    forged = old[1]
    forged.actor_name = "Somebody Else"
    prev = old[0].entry_hash
    for entry in [forged, old[2]]:
        entry.prev_hash = prev
        prev = entry_hash_of(entry, key=None)
        _tamper(
            "UPDATE audit_auditentry SET actor_name = %s, prev_hash = %s, entry_hash = %s "
            "WHERE id = %s",
            [entry.actor_name, entry.prev_hash, prev, entry.pk],
        )

    result = audit_verify()
    assert not result.ok and result.broken_seq == 4
    assert "prev_hash" in result.reason


def test_deleting_the_marker_makes_the_unkeyed_entries_fail_as_keyed_ones():
    _write_unkeyed_entries(3)
    _run_key_migration()
    _tamper("DELETE FROM audit_auditentry WHERE action = %s", [CHAIN_KEYED_ACTION])
    _tamper("UPDATE audit_auditchainhead SET last_seq = 3 WHERE id = 1", [])

    result = audit_verify()
    assert not result.ok and result.broken_seq == 1
    assert "keyed hash" in result.reason


# --- checkpoints ---------------------------------------------------------------------------


def _files(settings) -> list[Path]:
    return sorted(Path(settings.AUDIT_CHECKPOINT_DIR).glob("*.json"))


def test_a_checkpoint_is_a_signed_read_only_file_written_once_per_entry(author, settings):
    entries = make_trail(author, modules=2)

    first = checkpoint_write()
    again = checkpoint_write()

    files = _files(settings)
    assert [f.name for f in files] == [f"audit-checkpoint-{entries[-1].seq:012d}.json"]
    assert first.written.seq == entries[-1].seq
    assert first.written.entry_hash == entries[-1].entry_hash
    assert again.written is None and "up to date" in again.reason
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o444
    before = files[0].read_bytes()

    make_trail(author, modules=1)
    checkpoint_write()

    files = _files(settings)
    assert len(files) == 2
    assert files[0].read_bytes() == before, "an earlier checkpoint is never rewritten"
    assert [cp.seq for cp in checkpoints_load().checkpoints] == [
        entries[-1].seq,
        entries[-1].seq + 1,
    ]


def test_an_altered_checkpoint_file_fails_verification(author, settings):
    entries = make_trail(author, modules=2)
    checkpoint_write()
    path = _files(settings)[0]
    path.chmod(0o644)
    path.write_text(path.read_text().replace(entries[-1].entry_hash, "f" * 64))

    run = manage("verify_audit", "--checkpoints")

    assert run.code == 1
    assert f"checkpoint {path.name} is not signed with this AUDIT_HMAC_KEY" in run.err


def test_a_broken_chain_is_never_checkpointed(author, settings):
    entries = make_trail(author, modules=2)
    _tamper("UPDATE audit_auditentry SET action = %s WHERE seq = %s", ["forged", entries[0].seq])

    with pytest.raises(ChainBrokenError, match=f"entry #{entries[0].seq}"):
        checkpoint_write()
    run = manage("audit_checkpoint")

    assert run.code == 1 and "NOT checkpointed" in run.err
    assert _files(settings) == []


def test_verify_against_checkpoints_needs_the_folder_and_at_least_one(author, settings):
    make_trail(author, modules=1)

    missing = manage("verify_audit", "--checkpoints")
    Path(settings.AUDIT_CHECKPOINT_DIR).mkdir()
    empty = manage("verify_audit", "--checkpoints")

    assert missing.code == 1 and "does not exist" in missing.err
    assert empty.code == 1 and "no checkpoint in" in empty.err


def test_the_command_and_the_beat_task_write_checkpoints(author, settings):
    entries = make_trail(author, modules=1)

    run = manage("audit_checkpoint")
    assert run.code == 0 and f"(#{entries[-1].seq})" in run.out

    make_trail(author, modules=1)
    assert "written" in tasks.write_checkpoint.delay().get()

    assert len(_files(settings)) == 2
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert schedule["task"] == tasks.write_checkpoint.name
    assert schedule["schedule"] == settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS


def test_the_beat_task_without_a_checkpoint_folder_logs_an_error_instead_of_failing(
    author, settings, caplog
):
    make_trail(author, modules=1)
    settings.AUDIT_CHECKPOINT_DIR = ""

    answer = tasks.write_checkpoint.delay().get()

    assert answer.startswith("not checkpointed: AUDIT_CHECKPOINT_DIR is not set")
    assert "NOT checkpointed" in caplog.text
