"""The recommendation log: one answer and its items written all or nothing.

On PostgreSQL one statement does it (a data-modifying WITH inserts the
recommendation, the outer INSERT its items): a statement is atomic, and it is
one round trip where a transaction takes four (built here, as the ORM's
compiler costs more than the query). With DELIVERY_LOG_ASYNC_COMMIT (the
default) that transaction commits asynchronously: a database crash may lose
the last fraction of a second of logged answers, never half of one, and
nothing else (approvals, signatures, the audit trail, events) is written this
way. Elsewhere the ORM writes both inside a transaction.
"""

from __future__ import annotations

import json
import uuid
from functools import cache

from django.conf import settings
from django.db import connections, transaction
from django.db.models import AutoField

from contentapp.db import run_prepared

from .models import Recommendation, RecommendationItem


@cache
def _insert_sql(vendor: str) -> tuple[str, str, tuple, tuple]:
    """The one statement that logs an answer and its items on PostgreSQL, and its fields.

    The answer and its items travel as two JSON documents that PostgreSQL
    turns into rows (``jsonb_populate_record(set)`` map keys to columns by
    name): two parameters whatever the number of items, so the driver's work
    is a string and the statement's text never changes.
    """
    db = connections[Recommendation.objects.db]
    qn = db.ops.quote_name

    def insertable(model) -> tuple:
        return tuple(
            f
            for f in model._meta.concrete_fields
            if not f.generated and not (f.primary_key and isinstance(f, AutoField))
        )

    def insert(model, fields, source: str) -> str:
        table = qn(model._meta.db_table)
        columns = ", ".join(qn(f.column) for f in fields)
        return (
            f"INSERT INTO {table} ({columns}) "
            f"SELECT {columns} FROM {source}(NULL::{table}, %s::jsonb)"
        )

    head, items = insertable(Recommendation), insertable(RecommendationItem)
    head_sql = insert(Recommendation, head, "jsonb_populate_record")
    items_sql = insert(RecommendationItem, items, "jsonb_populate_recordset")
    plain = f"WITH answer AS ({head_sql}) {items_sql}"
    # The same, committed without waiting for the WAL flush: in autocommit the statement
    # is its own transaction, and a transaction-local setting made while it runs holds
    # when it commits.
    asynchronous = (
        "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)), "
        f"answer AS ({head_sql}) {items_sql}, lazy"
    )
    return asynchronous, plain, head, items


def _json_value(value) -> str:
    """UUIDs and timestamps (full precision) as PostgreSQL reads them from JSON."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def store(recommendation: Recommendation, items: list[dict]) -> None:
    """Write the answer and its items (their column values by attribute name), all or nothing."""
    db = connections[Recommendation.objects.db]
    if db.vendor != "postgresql" or not items:
        with transaction.atomic():
            recommendation.save(force_insert=True)
            RecommendationItem.objects.bulk_create(
                [RecommendationItem(recommendation=recommendation, **item) for item in items]
            )
        return
    sql, plain_sql, head_fields, item_fields = _insert_sql(db.vendor)
    head = {f.column: f.pre_save(recommendation, True) for f in head_fields}
    for item in items:
        item["recommendation_id"] = recommendation.pk
    # An item leaves out what its kind does not use (a recommendation: channel, send_at).
    defaults = {f.attname: f.get_default() for f in item_fields}
    rows = [
        {f.column: item.get(f.attname, defaults[f.attname]) for f in item_fields} for item in items
    ]
    params = [json.dumps(head, default=_json_value), json.dumps(rows, default=_json_value)]
    run_prepared(
        sql if settings.DELIVERY_LOG_ASYNC_COMMIT and not db.in_atomic_block else plain_sql,
        params,
        fetch=False,
    )
