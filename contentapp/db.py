"""Hot-path queries as prepared statements.

Django's PostgreSQL backend binds parameters on the client, so the server
parses and plans every statement anew. For the few statements every
recommendation runs (the token lookup, the serving snapshot, the log insert)
planning costs more than executing: on PostgreSQL ``run_prepared`` sends them
with server-side binding and psycopg's ``prepare=True``, so each connection
plans them once. Elsewhere (SQLite) it is an ordinary cursor. psycopg only
prepares when the connection has a ``prepare_threshold``, which Django sets to
None unless told otherwise: settings.py gives one that no statement reaches
(tests/delivery/test_prepared_statements.py reads ``pg_prepared_statements``).

Set ``DATABASE_PREPARED_STATEMENTS=0`` behind a pooler that cannot keep
prepared statements (PgBouncer in transaction mode before 1.21).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.conf import settings
from django.db import connection


def run_prepared(sql: str, params: Sequence = (), *, fetch: bool = True) -> list[tuple]:
    """Execute one statement (``%s`` placeholders); its rows when ``fetch``."""
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else []
    import psycopg

    # What Django's own cursor does first: the once-per-request health check
    # (CONN_HEALTH_CHECKS), so a connection the server dropped is replaced, not used.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    start = time.monotonic()
    # A cursor with server-side binding (Django's own bind on the client).
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall() if fetch else []
    if connection.queries_logged:  # DEBUG and assertNumQueries see it like any query
        connection.queries_log.append(
            {"sql": sql % tuple(repr(p) for p in params), "time": f"{time.monotonic() - start:.3f}"}
        )
    return rows


def clamp_out_of_range_times(sender, connection, **kwargs) -> None:
    """Load a stored time Python cannot represent as the nearest one it can.

    PostgreSQL holds ``infinity``, BC instants and years past 9999 in
    timestamp and date columns; psycopg raises DataError on loading them, so
    one such row (written by hand, or accepted before times were bounded)
    made every page listing it answer 500. Here it loads as the earliest or
    latest representable value instead (``datetime.min``/``max``, in UTC
    for timestamptz, ``date.min``/``max``). Connected to ``connection_created``; the loader
    wraps the one already registered (Django's time-zone aware one), so values
    in range load exactly as before.
    """
    if connection.vendor != "postgresql":
        return
    from datetime import UTC, date, datetime

    from psycopg.postgres import types
    from psycopg.pq import Format

    adapters = connection.connection.adapters
    bounds = {
        "timestamptz": (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)),
        "timestamp": (datetime.min, datetime.max),  # date_trunc(... AT TIME ZONE ...)
        "date": (date.min, date.max),
    }
    for name, (low, high) in bounds.items():
        inner = adapters.get_loader(types[name].oid, Format.TEXT)
        if inner is None or getattr(inner, "clamps_out_of_range", False):
            continue
        adapters.register_loader(name, _clamping_loader(inner, low, high))


def _clamping_loader(inner_class, earliest, latest):
    """A loader that asks ``inner_class`` (C loaders cannot be subclassed) and clamps."""
    from psycopg import DataError
    from psycopg.adapt import Loader

    class Clamped(Loader):
        clamps_out_of_range = True
        # Django compares it with the connection's to decide whether to register its own.
        timezone = getattr(inner_class, "timezone", None)

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._inner = inner_class(oid, context)

        def load(self, data):
            try:
                return self._inner.load(data)
            except DataError:
                text = bytes(data)
                return earliest if text[:1] == b"-" or text.endswith(b"BC") else latest

    return Clamped
