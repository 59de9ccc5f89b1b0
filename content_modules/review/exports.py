"""CSV exports: the audit trail (overall or per module) and a version's review record."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from content_modules.audit.trail import AuditFilters, audit_trail

AUDIT_COLUMNS = (
    "seq",
    "occurred_at_utc",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "module_id",
    "version_id",
    "data",
    "prev_hash",
    "entry_hash",
)

SIGNATURE_COLUMNS = (
    "module",
    "version",
    "title",
    "role",
    "printed_name",
    "signer",
    "meaning",
    "signed_at_utc",
    "content_hash",
    "matches_current_content",
    "reason",
)


def _line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _safe(value: Any) -> Any:
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def audit_entries(module_id: int | None = None, filters: AuditFilters | None = None):
    """Audit entries in chain order, optionally only those of one module, narrowed by filters."""
    return audit_trail(module_id=module_id, filters=filters)


def audit_csv_lines(
    module_id: int | None = None, filters: AuditFilters | None = None
) -> Iterator[str]:
    """The audit trail as CSV lines (header first), streamed in chain order."""
    yield _line(AUDIT_COLUMNS)
    for entry in audit_entries(module_id, filters).iterator(chunk_size=2000):
        yield _line(
            [
                entry.seq,
                entry.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
                entry.actor_id if entry.actor_id is not None else "",
                _safe(entry.actor_name),
                entry.action,
                entry.object_type,
                entry.object_id,
                entry.module_id if entry.module_id is not None else "",
                entry.version_id if entry.version_id is not None else "",
                _safe(json.dumps(entry.data, sort_keys=True, ensure_ascii=False)),
                entry.prev_hash,
                entry.entry_hash,
            ]
        )


def review_record_csv(record: dict[str, Any]) -> str:
    """A review record (from ``queries.review_record``) as CSV: one row per signature."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SIGNATURE_COLUMNS)
    for sig in record["signatures"]:
        writer.writerow(
            [
                record["module"],
                record["version"],
                _safe(record["title"]),
                sig["role"],
                _safe(sig["printed_name"]),
                sig["signer"],
                sig["meaning"],
                sig["signed_at"].isoformat(timespec="seconds").replace("+00:00", "Z"),
                sig["content_hash"],
                sig["matches_current_content"],
                _safe(sig["reason"]),
            ]
        )
    return out.getvalue()


DASHBOARD_COLUMNS = ("section", "key", "measure", "value")


def dashboard_csv_text(metrics: dict[str, Any]) -> str:
    """The dashboard's figures as long-format CSV: section, key, measure, value."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(DASHBOARD_COLUMNS)
    filters = metrics["filters"]
    for name, value in (
        ("brand", filters.brand or "any"),
        ("market", filters.market or "any"),
        ("from_utc", metrics["start"].isoformat()),
        ("to_utc", metrics["end"].isoformat()),
    ):
        writer.writerow(["filter", name, "value", _safe(value)])
    for row in metrics["cycle_time"]:
        for measure in ("approvals", "median_hours", "p90_hours"):
            writer.writerow(["cycle_time_week", row["week"], measure, row[measure]])
    for row in metrics["cycle_by_role"]:
        for measure in ("decisions", "median_hours", "mean_hours", "p90_hours"):
            writer.writerow(["cycle_time_role", row["role"], measure, row[measure]])
    rounds = metrics["rounds"]
    writer.writerow(["rounds_per_approval", "all", "approvals", rounds["approvals"]])
    writer.writerow(["rounds_per_approval", "all", "rounds", rounds["rounds"]])
    writer.writerow(
        ["rounds_per_approval", "all", "mean", "" if rounds["mean"] is None else rounds["mean"]]
    )
    for key, count in rounds["distribution"].items():
        writer.writerow(["rounds_per_approval", key, "approvals", count])
    for row in metrics["first_pass"]:
        writer.writerow(["first_pass", row["role"], "decided", row["decided"]])
        writer.writerow(["first_pass", row["role"], "approved", row["approved"]])
        rate = "" if row["rate"] is None else round(row["rate"], 4)
        writer.writerow(["first_pass", row["role"], "rate", rate])
    open_tasks = metrics["open_tasks"]
    for role, counts in open_tasks["by_role"].items():
        for bucket, count in counts.items():
            writer.writerow(["open_tasks", role, bucket, count])
        writer.writerow(["open_tasks", role, "overdue", open_tasks["overdue"].get(role, 0)])
    return out.getvalue()
