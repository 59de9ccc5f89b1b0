"""Delivery actions: recommendations for one HCP, approved content, the logged answers.

Compliance gating happens before any scoring: the candidates are the
catalogue's approved versions, filtered by expiry (today), channel, brand,
market and ``exclude``; only those are scored and ranked.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from content_modules import bounds
from content_modules.accounts.roles import Role, has_role
from content_modules.affinity.models import (
    EXTERNAL_ID_RE,
    HCP,
    AffinityModel,
    EngagementEvent,
    EventType,
    unsubscribed_from,
)
from content_modules.engagement.models import EngagementModel
from content_modules.errors import InvalidInput, NotFound, PermissionDenied
from content_modules.experiments import assignment as experiments
from content_modules.experiments import policies as arm_policy
from content_modules.experiments.models import ExperimentGeneration
from content_modules.library.models import Brand, Channel, Market, Module, Tag, TagKind
from contentapp.db import run_prepared

from . import catalogue as catalogue_mod
from . import changes, log
from .catalogue import Candidate, Catalogue
from .models import DeliveryGeneration, Recommendation
from .policy import Pick, choose, policy_name, request_rng

MAX_K = 50
_EXTERNAL_ID = re.compile(EXTERNAL_ID_RE)
READ_ROLES = (
    Role.ENGINE,
    Role.ADMIN,
    Role.AUTHOR,
    Role.MEDICAL,
    Role.LEGAL,
    Role.REGULATORY,
)


def can_recommend(actor) -> bool:
    """The engine's service account and admins ask for recommendations."""
    return has_role(actor, Role.ENGINE, Role.ADMIN)


def can_read_content(actor) -> bool:
    """Approved content is readable by the engine, admins, authors and reviewers."""
    return has_role(actor, *READ_ROLES)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


# --- vocabulary checks (from the catalogue, the database only on a miss) -----------------


_SLUG = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_known(value: str | None, known: dict[str, int], exists, field_name: str, noun: str):
    if value is None or value in known:
        return
    # Anything that cannot be a slug is unknown without asking the database (which
    # refuses NUL bytes in strings with an error, not an empty answer).
    if _SLUG.fullmatch(value) and exists(value):
        return
    raise InvalidInput(f"Unknown {noun} '{value[:64]}'.", field=field_name)


def check_channel(cat: Catalogue, value: str | None, field_name: str = "channel") -> None:
    _check_known(
        value,
        cat.channels,
        lambda v: Channel.objects.filter(slug=v).exists(),
        field_name,
        "channel",
    )


def check_brand(cat: Catalogue, value: str | None) -> None:
    _check_known(
        value, cat.brands, lambda v: Brand.objects.filter(slug=v).exists(), "brand", "brand"
    )


def check_market(cat: Catalogue, value: str | None) -> None:
    _check_known(
        value, cat.markets, lambda v: Market.objects.filter(code=v).exists(), "market", "market"
    )


def check_tag(cat: Catalogue | None, kind: str, value: str | None, field_name: str) -> None:
    known = cat.messages if (cat is not None and kind == TagKind.MESSAGE) else {}
    _check_known(
        value,
        known,
        lambda v: Tag.objects.filter(kind=kind, slug=v).exists(),
        field_name,
        f"{kind} tag",
    )


# --- recommendations ----------------------------------------------------------------------


@dataclass
class RecommendationRequest:
    hcp: str
    channel: str | None = None
    k: int = 5
    brand: str | None = None
    market: str | None = None
    slots: list[str] | None = None
    exclude: list[int] = field(default_factory=list)
    explore: bool = False
    context: dict = field(default_factory=dict)
    # Size of the request body that carried this, when known: lets a small body skip
    # measuring its context (bounds.check_free_json).
    sent_bytes: int | None = None


@dataclass
class RecommendationResult:
    recommendation: Recommendation
    items: list[dict]
    unfilled_slots: list[str]
    fallback: bool


def _validate_hcp(req: RecommendationRequest) -> None:
    if not isinstance(req.hcp, str) or not _EXTERNAL_ID.match(req.hcp):
        raise InvalidInput(
            "Must be 1-64 characters: letters, digits, '.', '_', ':' or '-'.", field="hcp"
        )


def _validate_context(req: RecommendationRequest) -> None:
    """The free context is logged with the answer: bounded in size and depth, storable."""
    if not isinstance(req.context, dict):
        raise InvalidInput("Must be a JSON object.", field="context")
    if req.context:
        bounds.check_free_json(
            req.context,
            field="context",
            max_bytes=settings.RECOMMENDATION_CONTEXT_MAX_BYTES,
            max_depth=settings.RECOMMENDATION_CONTEXT_MAX_DEPTH,
            sent_bytes=req.sent_bytes,
        )


def _validate(req: RecommendationRequest, cat: Catalogue) -> None:
    if not 1 <= req.k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}.", field="k")
    check_channel(cat, req.channel)
    check_brand(cat, req.brand)
    check_market(cat, req.market)
    if req.slots is not None:
        if not req.slots:
            raise InvalidInput("Give at least one slot, or leave slots out.", field="slots")
        if len(req.slots) > MAX_K:
            raise InvalidInput(f"At most {MAX_K} slots.", field="slots")
        for slot in req.slots:
            check_tag(cat, TagKind.MESSAGE, slot, "slots")


def _hcp_for(req: RecommendationRequest, snapshot: Snapshot) -> tuple[HCP, bool, dict]:
    """The HCP and its events, or an unsaved stand-in built from the request context for
    an unknown one."""
    if snapshot.hcp is not None:
        return snapshot.hcp, False, snapshot.events
    ctx = req.context or {}
    stand_in = HCP(
        external_id=req.hcp,
        specialty=str(ctx.get("specialty") or "")[:64],
        segment=str(ctx.get("segment") or "")[:64],
        region=str(ctx.get("region") or "")[:64],
        preferred_channel=req.channel or "",
    )
    stand_in.pk = -1  # owns no events: the model answers from its group prior
    return stand_in, True, snapshot.events


def _recently_delivered(events: dict) -> set[int]:
    """Modules delivered to the HCP within the frequency-cap window."""
    days = settings.DELIVERY_FREQUENCY_CAP_DAYS
    if days <= 0 or not len(events["t"]):
        return set()
    since = time.time() - days * 86400.0
    recent = (events["type"] == EventType.DELIVERED) & (events["t"] >= since)
    return {int(m) for m in events["module"][recent]}


def _unsubscribed_reason(
    events: dict, channel: str | None, cat: Catalogue
) -> tuple[str | None, set[str] | None]:
    """Why nothing may be sent, or the channels still open (None: all of them)."""
    gone = events["type"] == EventType.UNSUBSCRIBED
    left = unsubscribed_from(events["channel_slug"][gone])
    if not left:
        return None, None
    if "*" in left:
        return "The HCP unsubscribed from every channel.", None
    if channel is not None:
        if channel in left:
            return f"The HCP unsubscribed from the {channel} channel.", None
        return None, None
    still_open = set(cat.channels) - left
    if not still_open:
        return "The HCP unsubscribed from every channel.", None
    return None, still_open


@dataclass
class Snapshot:
    """What one recommendation reads of the world, in one query."""

    generation: tuple[str, int] | None  # None: the row does not exist yet
    model_head: tuple | None  # (id, version); (None, None) when no model is active
    hcp: HCP | None
    events: dict
    engagement_head: uuid.UUID | None | str = "read"  # the active engagement model's id
    experiments_head: int | None | str = "read"  # the running experiments' generation


EPOCH_SQL = {
    "postgresql": "EXTRACT(EPOCH FROM e.occurred_at)::float8",
    "sqlite": "(julianday(e.occurred_at) - 2440587.5) * 86400.0",
}


def _hcp_events_sql() -> tuple[str, str]:
    """The columns and joins that read one HCP (alias ``h``) and its events."""
    epoch = EPOCH_SQL.get(connection.vendor, EPOCH_SQL["postgresql"])
    # The module's latest version only for an event that names no version (COALESCE
    # evaluates the subquery only then): no join for the usual event.
    columns = (
        "h.id, h.specialty, h.segment, h.region, h.preferred_channel, h.timezone, "
        "h.microsegment, e.module_id, "
        f"COALESCE(e.version_id, (SELECT m.latest_id FROM {Module._meta.db_table} m "
        f"WHERE m.id = e.module_id), -1), {epoch}, e.type, "
        "COALESCE(e.dwell_seconds, 0), e.channel"
    )
    joins = f"LEFT JOIN {EngagementEvent._meta.db_table} e ON e.hcp_id = h.id"
    return columns, joins


def _hcp_events(rows: list[tuple], external_id: str) -> tuple[HCP | None, dict[str, np.ndarray]]:
    """The HCP (None when unknown) and its events as arrays, from ``_hcp_events_sql`` rows:
    what the serving face reads (version, t, type, dwell) plus module ids and channel
    slugs (the frequency cap and unsubscribes)."""
    hcp = None
    if rows and rows[0][0] is not None:
        pk, specialty, segment, region, preferred, zone, microsegment = rows[0][:7]
        hcp = HCP(
            pk=pk,
            external_id=external_id,
            specialty=specialty,
            segment=segment,
            region=region,
            preferred_channel=preferred,
            timezone=zone,
            microsegment=microsegment,
        )
    rows = [r[7:] for r in rows if r[7] is not None]  # an HCP without events: one empty row
    n = len(rows)
    return hcp, {
        "module": np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        "version": np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        "t": np.fromiter((r[2] for r in rows), dtype=np.float64, count=n),
        "type": np.array([r[3] for r in rows], dtype=object),
        "dwell": np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
        "channel_slug": np.array([r[5] or "" for r in rows], dtype=object),
    }


def _snapshot(external_id: str) -> Snapshot:
    """The catalogue generation, the active model, the HCP and its events: one round trip.

    The generation and the model head decide whether this process's
    in-memory catalogue and model are current; the HCP's events give its
    history, unsubscribes and frequency cap.
    """
    columns, joins = _hcp_events_sql()
    # The one-row heads are scalar subqueries, not joins: on tables without statistics
    # (a fresh database, autovacuum off) the planner guesses tens of rows for each
    # joined head, their product pushed the estimate past jit_above_cost, and
    # PostgreSQL spent 30 ms compiling every recommendation's query.
    sql = (
        f"SELECT g.epoch, g.value, am.id, am.model_version, "
        f"(SELECT em.id FROM {EngagementModel._meta.db_table} em WHERE em.is_active), "
        f"(SELECT xg.value FROM {ExperimentGeneration._meta.db_table} xg WHERE xg.id = 1), "
        f"{columns} "
        f"FROM {DeliveryGeneration._meta.db_table} g "
        f"LEFT JOIN {AffinityModel._meta.db_table} am ON am.is_active "
        f"LEFT JOIN {HCP._meta.db_table} h ON h.external_id = %s {joins} "
        "WHERE g.id = 1"
    )
    rows = run_prepared(sql, [external_id])
    if not rows:  # no generation row yet: the HCP and its events on their own
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {HCP._meta.db_table} h {joins} WHERE h.external_id = %s",
                [external_id],
            )
            hcp, events = _hcp_events(cursor.fetchall(), external_id)
        return Snapshot(None, None, hcp, events)
    first = rows[0]
    model_id, engagement_id = _uuid(first[2]), _uuid(first[4])
    hcp, events = _hcp_events([r[6:] for r in rows], external_id)
    return Snapshot(
        (first[0], first[1]), (model_id, first[3]), hcp, events, engagement_id, first[5]
    )


def _uuid(value) -> uuid.UUID | None:
    if value is not None and not isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))  # SQLite hands back the hex text
    return value


def recommendation_create(
    *,
    actor,
    req: RecommendationRequest,
    base_url: str = "",
    rng: np.random.Generator | None = None,
) -> RecommendationResult:
    """Rank approved versions for one HCP, store the answer with its propensities, return it."""
    _require(can_recommend(actor), "Only the engine service account or an admin may do this.")
    _validate_hcp(req)
    _validate_context(req)
    snapshot = _snapshot(req.hcp)
    cat = catalogue_mod.current(snapshot.generation)
    _validate(req, cat)
    today = catalogue_mod.today()
    hcp, unknown, events = _hcp_for(req, snapshot)
    epsilon = float(settings.DELIVERY_EPSILON)
    explore = bool(req.explore)
    # The HCP's arm of the running experiment covering this request, if any.
    assigned = experiments.assign(
        snapshot.experiments_head,
        external_id=req.hcp,
        brand=req.brand,
        market=req.market,
        channels=[req.channel],
        microsegment=hcp.microsegment or None,
    )

    has_history = bool(len(events["t"]))
    reason, open_channels = _unsubscribed_reason(events, req.channel, cat)
    capped_modules = _recently_delivered(events)
    picks: list[Pick | None] = []
    fallback = False
    model_version = ""
    positions_labels: list[str] = []
    if reason is None:
        # Compliance gate first: nothing outside this set is ever scored.
        idx = cat.select(
            today=today,
            channel=req.channel,
            brand=req.brand,
            market=req.market,
            channels_any=open_channels,
            exclude_modules=set(req.exclude),
        )
        idx = arm_policy.candidates(assigned, cat.module_ids, idx)  # a fixed arm narrows
        scored = arm_policy.score(
            assigned,
            hcp,
            cat.version_ids[idx],
            channel=req.channel,
            events=events,
            head=snapshot.model_head,
        )
        idx = idx[scored.keep]
        probs = scored.probabilities
        fallback = scored.fallback
        model_version = scored.model_version or ""
        capped = np.isin(cat.module_ids[idx], np.fromiter(capped_modules, dtype=np.int64))
        if req.slots:
            messages = cat.message_code[idx]
            positions = [messages == cat.messages.get(slot, -2) for slot in req.slots]
            positions_labels = list(req.slots)
        else:
            positions = [np.ones(len(idx), dtype=bool)] * req.k
            positions_labels = [""] * req.k
        arm_explore, arm_epsilon = arm_policy.exploration(assigned, explore, epsilon)
        picks = choose(
            probs,
            positions,
            capped,
            explore=arm_explore,
            epsilon=arm_epsilon,
            rng=rng or request_rng(),
        )

    cold_start = unknown or not has_history
    items: list[dict] = []
    rows: list[dict] = []  # the items' column values, stored with the answer
    unfilled: list[str] = []
    rank = 0
    shown = [p.index for p in picks if p is not None]
    explained = iter(scored.explain(shown) if shown else [])
    for label, pick in zip(positions_labels, picks, strict=True):
        if pick is None:
            if label:
                unfilled.append(label)
            continue
        rank += 1
        c = cat.candidates[int(idx[pick.index])]
        explained_item = next(explained)
        explanation, drivers = explained_item.contributions, explained_item.drivers
        probability = float(probs[pick.index])
        items.append(
            {
                "rank": rank,
                "slot": label or None,
                "module": c.module_id,
                "version": c.number,
                "version_id": c.version_id,
                "score": round(probability, 6),
                "propensity": pick.propensity,
                "explored": pick.explored,
                "frequency_capped": pick.capped,
                "explanation": {g: round(v, 4) for g, v in explanation.items()},
                "drivers": drivers,
                "approval_expires_on": c.expires_on,
                "content": c.content_for(base_url),
            }
        )
        rows.append(
            {
                "rank": rank,
                "slot": label,
                "module_id": c.module_id,
                "version_id": c.version_id,
                "score": probability,
                "propensity": pick.propensity,
                "explored": pick.explored,
                "frequency_capped": pick.capped,
            }
        )
    recommendation = Recommendation(
        hcp=None if unknown else hcp,
        hcp_external_id=req.hcp,
        request={
            "hcp": req.hcp,
            "channel": req.channel,
            "k": req.k,
            "brand": req.brand,
            "market": req.market,
            "slots": req.slots,
            "exclude": req.exclude,
            "explore": explore,
            "context": req.context,
        },
        model_version=model_version or "",
        policy=policy_name(*arm_policy.exploration(assigned, explore, epsilon)),
        explored=any(p.explored for p in picks if p is not None),
        cold_start=cold_start,
        reason=reason or "",
        experiment_id=assigned.experiment_id if assigned else None,
        arm=assigned.arm if assigned else "",
    )
    log.store(recommendation, rows)
    return RecommendationResult(recommendation, items, unfilled, fallback)


def recommendation_get(*, actor, recommendation_id) -> dict:
    """A stored recommendation, each item joined to the events that carry its id."""
    _require(can_recommend(actor), "Only the engine service account or an admin may do this.")
    rec = Recommendation.objects.filter(pk=recommendation_id).first()
    if rec is None:
        raise NotFound("No such recommendation.", field="id")
    items = list(rec.items.select_related("version").order_by("rank"))
    events: dict[int, list[dict]] = {}
    for e in (
        EngagementEvent.objects.filter(recommendation_id=rec.pk)
        .order_by("occurred_at", "id")
        .values("module_id", "event_id", "type", "occurred_at", "channel", "dwell_seconds")
    ):
        events.setdefault(e["module_id"], []).append(
            {
                "event_id": e["event_id"],
                "type": e["type"],
                "occurred_at": e["occurred_at"],
                # Stored blank when the event named no channel: null in the answer.
                "channel": e["channel"] or None,
                "dwell_seconds": e["dwell_seconds"],
            }
        )
    shown = {i.module_id for i in items}
    return {
        "recommendation_id": rec.pk,
        "kind": rec.kind,
        "hcp": rec.hcp_external_id,
        "created_at": rec.created_at,
        "model_version": rec.model_version or None,
        "policy": rec.policy,
        "cold_start": rec.cold_start,
        "reason": rec.reason or None,
        "experiment": {"id": rec.experiment_id, "arm": rec.arm} if rec.experiment_id else None,
        "request": rec.request,
        "items": [
            {
                "rank": i.rank,
                "slot": i.slot or None,
                "module": i.module_id,
                "version": i.version.number,
                "version_id": i.version_id,
                "score": i.score,
                "propensity": i.propensity,
                "explored": i.explored,
                "frequency_capped": i.frequency_capped,
                "channel": i.channel or None,
                "send_at": i.send_at,
                "events": events.get(i.module_id, []),
            }
            for i in items
        ],
        # Events that name this recommendation but a module it did not show.
        "unmatched_events": [e for m, evs in events.items() if m not in shown for e in evs],
    }


# --- approved content ---------------------------------------------------------------------

CONTENT_FILTERS = ("channel", "brand", "market", "message", "theme", "tonality", "format")


def _content_listing(
    filters: dict[str, Any], cat: Catalogue | None = None
) -> Callable[[Catalogue], list[Candidate]]:
    """Check the content list's filters; answer what lists a catalogue's matching items."""
    cat = cat or catalogue_mod.current()
    values = {k: (filters.get(k) or None) for k in CONTENT_FILTERS}
    check_channel(cat, values["channel"])
    check_brand(cat, values["brand"])
    check_market(cat, values["market"])
    for kind in (TagKind.MESSAGE, TagKind.THEME, TagKind.TONALITY, TagKind.FORMAT):
        key = "theme" if kind == TagKind.THEME else str(kind)
        check_tag(cat, kind, values[key], key)

    def listing(cat: Catalogue) -> list[Candidate]:
        idx = cat.select(
            today=catalogue_mod.today(),
            channel=values["channel"],
            brand=values["brand"],
            market=values["market"],
        )
        out = []
        for i in idx:
            c = cat.candidates[i]
            tags = c.content["tags"]
            if values["message"] and tags["message"] != values["message"]:
                continue
            if values["theme"] and values["theme"] not in tags["theme"]:
                continue
            if values["tonality"] and tags["tonality"] != values["tonality"]:
                continue
            if values["format"] and tags["format"] != values["format"]:
                continue
            out.append(c)
        return out

    return listing


def content_list(*, actor, filters: dict[str, Any]) -> list[Candidate]:
    """Approved, unexpired versions matching the filters, by module id."""
    return content_list_with_cursor(actor=actor, filters=filters)[0]


def content_list_with_cursor(*, actor, filters: dict[str, Any]) -> tuple[list[Candidate], str]:
    """The content list, and the ``changed_since`` cursor that follows on from it.

    The cursor is read before the list, so following it replays whatever changed
    while the list was read (a change applied twice changes nothing).
    """
    _require(can_read_content(actor), "Your role may not read approved content.")
    cursor = changes.start_cursor(catalogue_mod.today())
    cat = catalogue_mod.current()
    return _content_listing(filters, cat)(cat), cursor


def content_sync(*, actor, filters: dict[str, Any], cursor: str, limit: int) -> changes.SyncPage:
    """The content list as changes since ``cursor`` (``changes.sync_page``), and its size.

    Once ``has_more`` is false, an exact copy holds ``count`` items (unless something
    changed while the page was read; the next page brings it).
    """
    _require(can_read_content(actor), "Your role may not read approved content.")
    listing = _content_listing(filters)
    return changes.sync_page(cursor, limit, listing=listing, today=catalogue_mod.today())


def content_get(*, actor, module_id: int) -> Candidate:
    """The version of one module approved now; NotFound when there is none."""
    _require(can_read_content(actor), "Your role may not read approved content.")
    candidate = catalogue_mod.current().for_module(module_id, catalogue_mod.today())
    if candidate is None:
        raise NotFound("This module has no version approved now.", field="module")
    return candidate


def content_changes(*, actor, cursor: str | None, limit: int) -> changes.ChangePage:
    """Approvals and tombstones after ``cursor`` (``changes.py``: how an engine uses them)."""
    _require(can_read_content(actor), "Your role may not read approved content.")
    return changes.changes_since(cursor, limit)
