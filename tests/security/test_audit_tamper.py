"""Issue 11 point 7: the audit chain resists a database administrator (invariant 6).

Each attack is made by raw SQL as the PostgreSQL superuser, on the real trail that
the domain actions wrote; verify_audit (and verify_audit --checkpoints) must report
it with a non-zero exit code and a message naming the break.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from content_modules.audit.checkpoints import checkpoint_write
from content_modules.audit.models import AuditChainHead, AuditEntry
from tests.audit.support import make_trail, manage, rehash_from, superuser_sql
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    require_postgres()


def assert_broken(run, *phrases: str) -> None:
    assert run.code == 1, (run.out, run.err)
    assert "Audit trail BROKEN" in run.err
    for phrase in phrases:
        assert phrase in run.err, run.err


def assert_ok(run) -> None:
    assert run.code == 0, run.err
    assert "Audit trail OK" in run.out


@pytest.mark.parametrize("table", ["audit_auditentry", "audit_auditchainhead"])
def test_truncate_of_the_audit_tables_is_refused_by_a_trigger(author, table):
    entries = make_trail(author)

    with (
        superuser_sql() as cursor,
        pytest.raises(DatabaseError, match="TRUNCATE refused"),
        transaction.atomic(),
    ):
        cursor.execute(f"TRUNCATE {table} CASCADE")

    assert AuditEntry.objects.count() == len(entries)
    assert AuditChainHead.objects.get().last_seq == len(entries)
    assert_ok(manage("verify_audit"))


def test_the_head_row_cannot_be_deleted_or_rolled_back(author):
    entries = make_trail(author)
    earlier = entries[-3]

    with superuser_sql() as cursor:
        with pytest.raises(DatabaseError, match="DELETE refused"), transaction.atomic():
            cursor.execute("DELETE FROM audit_auditchainhead")
        with pytest.raises(DatabaseError, match="only advances"), transaction.atomic():
            cursor.execute(
                "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s",
                [earlier.seq, earlier.entry_hash],
            )

    assert AuditChainHead.objects.get().last_seq == entries[-1].seq


def test_truncate_past_the_trigger_is_reported_by_the_head_left_behind(author):
    entries = make_trail(author)

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute("TRUNCATE audit_auditentry")

    assert_broken(
        manage("verify_audit"),
        f"chain head says #{entries[-1].seq} but the trail ends at #0",
    )


def test_truncate_and_deleting_the_head_is_reported_against_the_checkpoints(author):
    entries = make_trail(author)
    checkpoint_write()

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute("TRUNCATE audit_auditentry, audit_auditchainhead")

    # An emptied trail with no head looks like a new installation from inside the
    # database; only the checkpoint kept outside it knows there was a trail.
    assert_ok(manage("verify_audit"))
    assert_broken(
        manage("verify_audit", "--checkpoints"),
        "the trail ends at #0",
        f"records entry #{entries[-1].seq}: entries were cut",
    )


def test_deleting_the_head_row_is_reported(author):
    entries = make_trail(author)

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute("DELETE FROM audit_auditchainhead")

    assert_broken(
        manage("verify_audit"),
        f"the chain head row is missing while the trail holds #{entries[-1].seq}",
    )


def test_a_head_behind_the_trail_is_reported(author):
    entries = make_trail(author)
    earlier = entries[-2]

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute(
            "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s",
            [earlier.seq, earlier.entry_hash],
        )

    assert_broken(manage("verify_audit"), "chain head is behind the trail")


def test_cutting_the_tail_and_rolling_the_head_back_is_caught_by_the_checkpoints(author):
    entries = make_trail(author, modules=5)
    checkpoint_write()
    kept = entries[-3]

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq > %s", [kept.seq])
        cursor.execute(
            "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s",
            [kept.seq, kept.entry_hash],
        )

    # What is left is a valid chain ending at a valid head: the database alone cannot tell.
    assert_ok(manage("verify_audit"))
    assert_broken(
        manage("verify_audit", "--checkpoints"),
        f"the trail ends at #{kept.seq}",
        f"records entry #{entries[-1].seq}: entries were cut",
    )


def test_forging_an_entry_and_recomputing_plain_sha256_hashes_is_reported(author):
    entries = make_trail(author)
    checkpoint_write()
    target = entries[2]

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET actor_name = %s WHERE id = %s",
            ["Somebody Else (someone)", target.pk],
        )
        rehash_from(cursor, target.seq, key=None)

    expected = f"at entry #{target.seq}: content does not match its keyed hash"
    assert_broken(manage("verify_audit"), expected)
    assert_broken(manage("verify_audit", "--checkpoints"), expected)


def test_forging_an_entry_and_recomputing_with_a_wrong_key_is_reported(author):
    entries = make_trail(author)
    checkpoint_write()
    target = entries[-2]

    with superuser_sql(bypass_triggers=True) as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET data = %s WHERE id = %s", ['{"forged": true}', target.pk]
        )
        rehash_from(cursor, target.seq, key=b"a guess at the audit key, not the real one")

    expected = f"at entry #{target.seq}: content does not match its keyed hash"
    assert_broken(manage("verify_audit"), expected)
    assert_broken(manage("verify_audit", "--checkpoints"), expected)


def test_an_untampered_trail_verifies_against_its_checkpoints(author):
    make_trail(author)
    checkpoint_write()
    make_trail(author, modules=1)

    run = manage("verify_audit", "--checkpoints")

    assert_ok(run)
    assert "held against 1 signed checkpoints" in run.out
    assert "newer than the last checkpoint" in run.out
