"""Actions that write HCP profiles and engagement events (the engine's input).

Ingestion is built for batches of up to 10,000 items: each item is validated in
plain Python, modules, versions and HCPs are resolved with a few set-based
queries per batch, and events are written with
``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING`` (on PostgreSQL from a
staging table that ``COPY`` fills), so the database itself decides what is a
duplicate, even between concurrent batches. No per-event query is made.

Rules the spec left open, decided here:

* The version of an event given only a ``module`` is the module's version with
  the latest ``approved_at`` at or before ``occurred_at``: approvals supersede
  each other, so that is the version that was being served then. A version
  withdrawn or expired since still counts (an email opened after a withdrawal
  still showed that content). An event dated before the module's first
  approval (back-filled history, clock skew) gets the module's first approved
  version; a module never approved gets no version.
* ``unsubscribed`` events are the record of unsubscriptions (no second table
  that could disagree with them): ``unsubscribed_channels(hcp)`` answers the
  channels an HCP left; an unsubscribed event without a channel means every
  channel.
* ``PUT /hcps/{id}`` replaces the whole profile (fields left out become empty).
* A batch that repeats an ``event_id`` counts the repeats as duplicates; one
  that repeats an HCP ``external_id`` rejects the repeats (which profile
  should win is the caller's decision, not ours).
"""

from __future__ import annotations

import bisect
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from content_modules import bounds
from content_modules.accounts.roles import Role, has_role
from content_modules.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from content_modules.library.models import Channel, Module, ModuleVersion

from . import localtime
from .models import EXTERNAL_ID_RE, HCP, EngagementEvent, EventType, unsubscribed_from

MAX_BATCH = 10_000
MAX_DWELL_SECONDS = 86_400 * 365  # a year: anything longer is a broken client clock
PROFILE_FIELDS = ("specialty", "segment", "region", "preferred_channel", "timezone")
PROFILE_MAX_CHARS = {
    "specialty": 64,
    "segment": 64,
    "region": 64,
    "preferred_channel": 32,
    "timezone": 64,
}
ATTRIBUTES_MAX_KEYS = 100
EVENT_TYPES = frozenset(EventType.values)
_EXTERNAL_ID = re.compile(EXTERNAL_ID_RE)
_INSERT_CHUNK = 2000  # rows per INSERT: 11 params each stays under SQLite's and PG's limits
_EXTERNAL_ID_MESSAGE = (
    "Must be 1-64 characters: letters, digits, '.', '_', ':' or '-', "
    "starting with a letter or digit."
)


def can_ingest(actor) -> bool:
    """The engine's service account and admins write HCPs and events."""
    return has_role(actor, Role.ENGINE, Role.ADMIN)


def _require_ingest(actor) -> None:
    if not can_ingest(actor):
        raise PermissionDenied("Only the engine service account or an admin may do this.")


def _channel_slugs() -> frozenset[str]:
    return frozenset(Channel.objects.values_list("slug", flat=True))


def valid_external_id(value: Any) -> bool:
    """True when value is a well-formed HCP external id."""
    return isinstance(value, str) and _EXTERNAL_ID.fullmatch(value) is not None


# ---------------------------------------------------------------- HCP profiles


def _clean_profile(data: Any, channels: frozenset[str]) -> tuple[dict, dict[str, list[str]]]:
    """Validate one profile body; answer (clean values, errors)."""
    if not isinstance(data, dict):
        return {}, {"non_field_errors": ["Expected a JSON object."]}
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if value is None:
            clean[name] = ""
        elif not isinstance(value, str):
            errors[name] = ["Must be a string."]
        elif len(value) > PROFILE_MAX_CHARS[name]:
            errors[name] = [f"At most {PROFILE_MAX_CHARS[name]} characters."]
        elif bounds.UNSTORABLE_CHAR.search(value):  # PostgreSQL refuses these: a 500 otherwise
            errors[name] = ["Must not contain NUL or lone surrogate characters."]
        else:
            clean[name] = value.strip()
    channel = clean.get("preferred_channel")
    if channel and channel not in channels:
        errors["preferred_channel"] = [f"Unknown channel {channel!r}."]
    zone = clean.get("timezone")
    if zone and not localtime.valid_timezone(zone):
        errors["timezone"] = [
            f"Unknown time zone {zone!r}: give an IANA name such as 'Europe/London'."
        ]
    attributes = data.get("attributes")
    if attributes is None:
        clean["attributes"] = {}
    elif not isinstance(attributes, dict):
        errors["attributes"] = ["Must be a JSON object."]
    elif len(attributes) > ATTRIBUTES_MAX_KEYS:
        errors["attributes"] = [f"At most {ATTRIBUTES_MAX_KEYS} keys."]
    else:
        try:
            check_attributes(attributes)
        except DomainError as exc:
            errors["attributes"] = [exc.message]
        else:
            clean["attributes"] = attributes
    return clean, errors


def check_attributes(attributes: dict) -> None:
    """Bound free attributes (stored as sent): size (413), depth and storable text (400)."""
    bounds.check_free_json(
        attributes,
        field="attributes",
        max_bytes=settings.HCP_ATTRIBUTES_MAX_BYTES,
        max_depth=settings.HCP_ATTRIBUTES_MAX_DEPTH,
    )


def hcp_get(*, actor, external_id: str) -> HCP:
    """One HCP profile by external id."""
    _require_ingest(actor)
    if not valid_external_id(external_id):
        raise InvalidInput(_EXTERNAL_ID_MESSAGE, field="external_id")
    try:
        return HCP.objects.get(external_id=external_id)
    except HCP.DoesNotExist:
        raise NotFound(f"No HCP {external_id!r}.", field="external_id") from None


@transaction.atomic
def hcp_upsert(*, actor, external_id: str, data: Any) -> tuple[HCP, bool]:
    """Create or replace one HCP profile; answer (hcp, created)."""
    _require_ingest(actor)
    if not valid_external_id(external_id):
        raise InvalidInput(_EXTERNAL_ID_MESSAGE, field="external_id")
    if isinstance(data, dict) and isinstance(data.get("attributes"), dict):
        check_attributes(data["attributes"])  # oversized is a 413, not a 400
    clean, errors = _clean_profile(data, _channel_slugs())
    if errors:
        raise ValidationError(errors)
    hcp, created = HCP.objects.select_for_update().get_or_create(
        external_id=external_id, defaults=clean
    )
    if not created:
        for name, value in clean.items():
            setattr(hcp, name, value)
        hcp.save()
    return hcp, created


@dataclass
class HCPBulkResult:
    created: int = 0
    updated: int = 0
    rejected: list[dict] = field(default_factory=list)


def _batch_list(payload: Any, key: str) -> list:
    if not isinstance(payload, dict) or key not in payload:
        raise InvalidInput(f"Send {{{key!r}: [...]}}.", field=key)
    items = payload[key]
    if not isinstance(items, list):
        raise InvalidInput("Must be a list.", field=key)
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(
            f"At most {MAX_BATCH:,} items per call; got {len(items):,}.", field=key
        )
    return items


@transaction.atomic
def hcps_bulk_upsert(*, actor, payload: Any) -> HCPBulkResult:
    """Create or replace up to 10,000 HCP profiles; invalid items are reported, not fatal."""
    _require_ingest(actor)
    items = _batch_list(payload, "hcps")
    result = HCPBulkResult()
    channels = _channel_slugs()
    seen: dict[str, int] = {}
    rows: list[HCP] = []
    for index, item in enumerate(items):
        clean, errors = _clean_profile(item, channels)
        external_id = item.get("external_id") if isinstance(item, dict) else None
        if isinstance(item, dict):
            if not valid_external_id(external_id):
                errors["external_id"] = [_EXTERNAL_ID_MESSAGE]
            elif external_id in seen:
                errors["external_id"] = [
                    f"Appears more than once in this batch (first at index {seen[external_id]})."
                ]
        if errors:
            result.rejected.append({"index": index, "errors": errors})
            continue
        external_id = cast(str, external_id)  # checked above: a valid id when no errors
        seen[external_id] = index
        rows.append(HCP(external_id=external_id, **clean))
    if rows:
        existing: set[str] = set()
        ids = [r.external_id for r in rows]
        for start in range(0, len(ids), 5000):
            existing.update(
                HCP.objects.filter(external_id__in=ids[start : start + 5000]).values_list(
                    "external_id", flat=True
                )
            )
        # Key order: concurrent overlapping uploads lock rows alike and cannot deadlock.
        rows.sort(key=lambda hcp: hcp.external_id)
        HCP.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[*PROFILE_FIELDS, "attributes", "updated_at"],
        )
        result.updated = len(existing)
        result.created = len(rows) - result.updated
    return result


# ---------------------------------------------------------------- events


@dataclass
class EventBatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)


MAX_ID = 2**63 - 1  # a bigint: a larger id (10**400) overflowed in the query


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def _parse_uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class _Event(NamedTuple):
    """One validated event, before its HCP and version are resolved."""

    event_id: uuid.UUID
    hcp: str
    module: int | None
    version: int | None
    type: str
    occurred_at: datetime
    channel: str
    recommendation_id: uuid.UUID | None
    dwell_seconds: float | None


def _check_event(
    item: Any, channels: frozenset[str], latest_allowed: datetime, earliest_allowed: datetime
) -> tuple[_Event | None, dict[str, list[str]]]:
    """Validate one event in plain Python; answer (parsed tuple, errors)."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Expected a JSON object."]}
    errors: dict[str, list[str]] = {}

    event_id = _parse_uuid(item.get("event_id"))
    if event_id is None:
        errors["event_id"] = ["Required: a UUID."]

    hcp = item.get("hcp")
    if not valid_external_id(hcp):
        errors["hcp"] = ["Required: an external id. " + _EXTERNAL_ID_MESSAGE]

    module, version = item.get("module"), item.get("version")
    if module is None and version is None:
        errors["module"] = ["Required: a module id (or give 'version')."]
    if module is not None and not _positive_int(module):
        errors["module"] = ["Must be a module id (a positive integer)."]
    if version is not None and not _positive_int(version):
        errors["version"] = ["Must be a version id (a positive integer)."]

    event_type = item.get("type")
    # isinstance first: a dict or list is unhashable (a TypeError, a 500, in the set test).
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        errors["type"] = [
            f"Unknown event type {event_type!r}; expected one of {', '.join(EventType.values)}."
        ]

    occurred_at = None
    raw_time = item.get("occurred_at")
    if not isinstance(raw_time, str):
        errors["occurred_at"] = ["Required: an ISO 8601 timestamp with a time zone."]
    else:
        try:
            occurred_at = datetime.fromisoformat(raw_time)
        except ValueError:
            errors["occurred_at"] = ["Not an ISO 8601 timestamp."]
        else:
            if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
                errors["occurred_at"] = ["Needs a time zone (e.g. 'Z' or '+01:00')."]
            elif occurred_at > latest_allowed:
                errors["occurred_at"] = [
                    "Lies in the future (more than "
                    f"{settings.EVENTS_FUTURE_TOLERANCE_SECONDS} seconds ahead of the server)."
                ]
            elif occurred_at < earliest_allowed:
                # Year 1 at +01:00 is a BC instant: stored, it breaks every page showing it.
                errors["occurred_at"] = [f"Lies before {earliest_allowed.date().isoformat()}."]

    channel = item.get("channel")
    if channel is None:
        channel = ""
    elif not isinstance(channel, str) or channel not in channels:
        errors["channel"] = [f"Unknown channel {channel!r}."]

    recommendation_id = item.get("recommendation_id")
    if recommendation_id is not None:
        recommendation_id = _parse_uuid(recommendation_id)
        if recommendation_id is None:
            errors["recommendation_id"] = ["Must be a UUID or null."]

    dwell = item.get("dwell_seconds")
    if dwell is not None:
        # An int past float range (10**400) would raise OverflowError in float().
        if (
            isinstance(dwell, bool)
            or not isinstance(dwell, int | float)
            or not 0 <= dwell <= MAX_DWELL_SECONDS
            or not math.isfinite(dwell)
        ):
            errors["dwell_seconds"] = [
                f"Must be a number of seconds from 0 to {MAX_DWELL_SECONDS:,}, or null."
            ]
        else:
            dwell = float(dwell)

    if errors:
        return None, errors
    # Without errors every value above is set and of its type.
    assert event_id is not None and occurred_at is not None
    return _Event(
        event_id,
        cast(str, hcp),
        module,
        version,
        cast(str, event_type),
        occurred_at,
        cast(str, channel),
        recommendation_id,
        dwell,
    ), {}


def _hcp_pks(external_ids: list[str]) -> dict[str, int]:
    """HCP pks by external id for those that exist."""
    if not external_ids:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN placeholders.
        table = connection.ops.quote_name(HCP._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%s::varchar[])",
                [external_ids],
            )
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for start in range(0, len(external_ids), 5000):
        chunk = external_ids[start : start + 5000]
        found.update(HCP.objects.filter(external_id__in=chunk).values_list("external_id", "pk"))
    return found


def _hcp_ids(external_ids: set[str]) -> dict[str, int]:
    """HCP pks by external id, creating unknown HCPs with an empty profile."""
    found = _hcp_pks(list(external_ids))
    # Sorted, like the events below: concurrent batches then wait on each
    # other's new keys in one global order and never deadlock.
    missing = sorted(x for x in external_ids if x not in found)
    if missing:
        # ignore_conflicts: a concurrent batch may create the same HCP first.
        HCP.objects.bulk_create(
            [HCP(external_id=x) for x in missing], batch_size=2000, ignore_conflicts=True
        )
        found.update(_hcp_pks(missing))
    return found


def _approval_history(module_ids: set[int]) -> dict[int, tuple[list[datetime], list[int]]]:
    """Per module, its versions' approval times (ascending) and ids."""
    history: dict[int, tuple[list[datetime], list[int]]] = {}
    rows = (
        ModuleVersion.objects.filter(module_id__in=module_ids, approved_at__isnull=False)
        .order_by("module_id", "approved_at")
        .values_list("module_id", "approved_at", "pk")
    )
    for module_id, approved_at, pk in rows:
        times, ids = history.setdefault(module_id, ([], []))
        times.append(approved_at)
        ids.append(pk)
    return history


def version_served_at(history: tuple[list[datetime], list[int]] | None, when: datetime):
    """The version id approved at ``when`` by the rule in this module's docstring."""
    if not history:
        return None
    times, ids = history
    position = bisect.bisect_right(times, when)
    return ids[position - 1] if position else ids[0]


_COLUMNS = (
    "event_id",
    "hcp_id",
    "module_id",
    "version_id",
    "type",
    "occurred_at",
    "channel",
    "recommendation_id",
    "dwell_seconds",
    "received_at",
)


# PostgreSQL column types of _COLUMNS, for the staging table that COPY fills.
_PG_TYPES = (
    "uuid",
    "bigint",
    "bigint",
    "bigint",
    "varchar(16)",
    "timestamptz",
    "varchar(32)",
    "uuid",
    "float8",
    "timestamptz",
)
_PG_STAGE = "affinity_event_stage"


def _insert_events_postgresql(rows: list[tuple]) -> int:
    """COPY rows into a temporary staging table, then move the new ones over."""
    import psycopg

    table = connection.ops.quote_name(EngagementEvent._meta.db_table)
    columns = ", ".join(_COLUMNS)
    connection.ensure_connection()
    # psycopg formats COPY rows in C: far cheaper than binding 100,000 query
    # parameters (Django's client-side binding quotes each one in Python). The
    # temporary table lives as long as the connection and empties at commit.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_STAGE} ("
            + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _PG_TYPES, strict=True))
            + ") ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {_PG_STAGE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_PG_STAGE} "
            "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        inserted = len(cursor.fetchall())
        # Empty it now too: a caller may go on in the same transaction.
        cursor.execute(f"TRUNCATE {_PG_STAGE}")
    return inserted


def _insert_events(rows: list[tuple]) -> int:
    """Insert event rows, skipping existing event ids; answer how many were new."""
    if not rows:
        return 0
    # In event_id order, so that concurrent batches sharing events lock them in
    # the same order (no deadlock between two replays of overlapping batches).
    rows = sorted(rows, key=lambda row: row[0])
    if connection.vendor == "postgresql":
        return _insert_events_postgresql(rows)
    opts = EngagementEvent._meta
    fields = [cast(models.Field, opts.get_field(name)) for name in _COLUMNS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            params: list = []
            for row in chunk:
                # Django's conversion: SQLite stores UUIDs as hex and datetimes as text.
                params.extend(
                    f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)
                )
            cursor.execute(
                f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                params,
            )
            inserted += len(cursor.fetchall())
    return inserted


def events_ingest(*, actor, payload: Any, now: datetime | None = None) -> EventBatchResult:
    """Store a batch of up to 10,000 engagement events, idempotent by event_id.

    Valid events are written in the caller's transaction even when others are
    rejected; each rejection names its index and the reason. Unknown HCPs are
    created with an empty profile.
    """
    _require_ingest(actor)
    items = _batch_list(payload, "events")
    now = now or timezone.now()
    latest_allowed = now + timedelta(seconds=settings.EVENTS_FUTURE_TOLERANCE_SECONDS)
    earliest_allowed = datetime.combine(bounds.earliest_date(), time.min, tzinfo=UTC)
    channels = _channel_slugs()
    result = EventBatchResult()

    parsed: list[tuple[int, _Event]] = []
    for index, item in enumerate(items):
        checked, errors = _check_event(item, channels, latest_allowed, earliest_allowed)
        if checked is None:
            result.rejected.append({"index": index, "errors": errors})
        else:
            parsed.append((index, checked))

    module_ids = {e.module for _, e in parsed if e.module is not None}
    version_ids = {e.version for _, e in parsed if e.version is not None}
    known_modules = set(Module.objects.filter(pk__in=module_ids).values_list("pk", flat=True))
    version_module = dict(
        ModuleVersion.objects.filter(pk__in=version_ids).values_list("pk", "module_id")
    )

    good: list[_Event] = []
    for index, e in parsed:
        errors = {}
        if e.version is not None:
            owner = version_module.get(e.version)
            if owner is None:
                errors["version"] = [f"Version {e.version} does not exist."]
            elif e.module is not None and e.module != owner:
                errors["version"] = [
                    f"Version {e.version} belongs to module {owner}, not {e.module}."
                ]
            else:
                e = e._replace(module=owner)
        elif e.module not in known_modules:
            errors["module"] = [f"Module {e.module} does not exist."]
        if errors:
            result.rejected.append({"index": index, "errors": errors})
        else:
            good.append(e)
    result.rejected.sort(key=lambda r: r["index"])

    # Repeats inside one batch are duplicates of their first occurrence.
    unique: dict[uuid.UUID, _Event] = {}
    for e in good:
        if e.event_id in unique:
            result.duplicates += 1
        else:
            unique[e.event_id] = e
    if not unique:
        return result

    with transaction.atomic():
        hcp_pk = _hcp_ids({e.hcp for e in unique.values()})
        # Checked above: an event without a version names its module.
        needs_version = {e.module for e in unique.values() if e.version is None and e.module}
        history = _approval_history(needs_version) if needs_version else {}
        rows = [
            (
                e.event_id,
                hcp_pk[e.hcp],
                e.module,
                e.version
                if e.version is not None
                else version_served_at(history.get(cast(int, e.module)), e.occurred_at),
                e.type,
                e.occurred_at,
                e.channel,
                e.recommendation_id,
                e.dwell_seconds,
                now,
            )
            for e in unique.values()
        ]
        result.accepted = _insert_events(rows)
    result.duplicates += len(unique) - result.accepted
    return result


def unsubscribed_channels(hcp: HCP) -> set[str]:
    """Channels the HCP unsubscribed from; ``{"*"}`` stands for every channel."""
    return unsubscribed_from(
        EngagementEvent.objects.filter(hcp=hcp, type=EventType.UNSUBSCRIBED).values_list(
            "channel", flat=True
        )
    )
