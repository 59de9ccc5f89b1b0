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
