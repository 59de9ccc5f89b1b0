"""Helpers for the audit tamper tests: run a command as manage.py does, attack by raw SQL."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from unittest import mock

from django.core.management import base, execute_from_command_line
from django.db import connection

from content_modules.audit.models import AuditEntry
from content_modules.audit.services import GENESIS_HASH, entry_hash_of
from tests.factories import make_module


@dataclass
class Run:
    code: int
    out: str
    err: str


def manage(*args: str) -> Run:
    """Run a management command through manage.py's own entry point: exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    # manage.py closes every connection when a command ends; here that would close the
    # test's own transaction (and the trail it holds) under it, so it stays open.
    keep_open = mock.patch.object(base.connections, "close_all", lambda: None)
    with keep_open, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            execute_from_command_line(["manage.py", *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(code, out.getvalue(), err.getvalue())


def make_trail(author, modules: int = 3) -> list[AuditEntry]:
    """A few modules' worth of audit entries, written by the real actions."""
    for _ in range(modules):
        make_module(author)
    return list(AuditEntry.objects.order_by("seq"))


@contextlib.contextmanager
def superuser_sql(*, bypass_triggers: bool = False):
    """A cursor as the database superuser, optionally skipping every trigger (as a DBA can)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone()[0], "the tamper tests attack as the database superuser"
        # The test's own writes are still in its transaction: check their deferred foreign
        # keys now, as a commit would, so that TRUNCATE meets the table as committed.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if bypass_triggers:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if bypass_triggers:
                cursor.execute("SET session_replication_role = DEFAULT")


def rehash_from(cursor, seq: int, *, key: bytes | None) -> None:
    """What an attacker does after forging entry ``seq``: recompute every later hash and the head.

    ``key=None`` is plain sha256 (the old scheme), any other key a guess at the real one.
    """
    prev = AuditEntry.objects.get(seq=seq - 1).entry_hash if seq > 1 else GENESIS_HASH
    last_seq = seq - 1
    for entry in AuditEntry.objects.filter(seq__gte=seq).order_by("seq"):
        entry.prev_hash = prev
        new_hash = entry_hash_of(entry, key=key)
        cursor.execute(
            "UPDATE audit_auditentry SET prev_hash = %s, entry_hash = %s WHERE id = %s",
            [prev, new_hash, entry.pk],
        )
        prev, last_seq = new_hash, entry.seq
    cursor.execute(
        "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE id = 1",
        [last_seq, prev],
    )
