"""Delivery actions: recommendations for one HCP, approved content, the logged answers.

Compliance gating happens before any scoring: the candidates are the
catalogue's approved versions, filtered by expiry (today), channel, brand,
market and ``exclude``; only those are scored and ranked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content_modules.accounts.roles import Role, has_role
from content_modules.affinity.ingest import unsubscribed_channels
from content_modules.affinity.learning.features import GROUPS, sigmoid
from content_modules.affinity.learning.scoring import (
    active_model,
    drivers_for_rows,
    group_prior_scores,
    score_versions,
)
from content_modules.affinity.models import EXTERNAL_ID_RE, HCP, EngagementEvent, EventType
from content_modules.errors import InvalidInput, NotFound, PermissionDenied
from content_modules.library.models import Brand, Channel, Market, Tag, TagKind

from . import catalogue as catalogue_mod
from .catalogue import Candidate, Catalogue
from .models import Recommendation, RecommendationItem
from .policy import Pick, choose, policy_name

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


@dataclass
class RecommendationResult:
    recommendation: Recommendation
    items: list[dict]
    unfilled_slots: list[str]
    fallback: bool


def _validate(req: RecommendationRequest, cat: Catalogue) -> None:
    if not isinstance(req.hcp, str) or not _EXTERNAL_ID.match(req.hcp):
        raise InvalidInput(
            "Must be 1-64 characters: letters, digits, '.', '_', ':' or '-'.", field="hcp"
        )
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


def _hcp_for(req: RecommendationRequest) -> tuple[HCP, bool]:
    """The HCP, or an unsaved stand-in built from the request context for an unknown one."""
    hcp = HCP.objects.filter(external_id=req.hcp).first()
    if hcp is not None:
        return hcp, False
    ctx = req.context or {}
    stand_in = HCP(
        external_id=req.hcp,
        specialty=str(ctx.get("specialty") or "")[:64],
        segment=str(ctx.get("segment") or "")[:64],
        region=str(ctx.get("region") or "")[:64],
        preferred_channel=req.channel or "",
    )
    stand_in.pk = -1  # owns no events: the model answers from its group prior
    return stand_in, True


def _recently_delivered(hcp: HCP) -> tuple[set[int], bool]:
    """Modules delivered to the HCP within the frequency-cap window, and whether it has history."""
    days = settings.DELIVERY_FREQUENCY_CAP_DAYS
    since = timezone.now() - timedelta(days=days)
    events = EngagementEvent.objects.filter(hcp_id=hcp.pk)
    has_history = events.exists()
    if not has_history or days <= 0:
        return set(), has_history
    delivered = events.filter(type=EventType.DELIVERED, occurred_at__gte=since)
    return set(delivered.values_list("module_id", flat=True)), True


def _unsubscribed_reason(hcp: HCP, channel: str | None) -> tuple[str | None, set[str] | None]:
    """Why nothing may be sent, or the channels still open (None: all of them)."""
    left = unsubscribed_channels(hcp)
    if not left:
        return None, None
    if "*" in left:
        return "The HCP unsubscribed from every channel.", None
    if channel is not None:
        if channel in left:
            return f"The HCP unsubscribed from the {channel} channel.", None
        return None, None
    still_open = set(Channel.objects.exclude(slug__in=left).values_list("slug", flat=True))
    if not still_open:
        return "The HCP unsubscribed from every channel.", None
    return None, still_open


@dataclass
class Scored:
    """The model's probabilities for the gated candidates; explanations only when asked."""

    keep: np.ndarray  # which of the version ids asked for could be scored
    probabilities: np.ndarray  # one per kept version, in order
    model_version: str
    fallback: bool
    explain: Callable[[int], tuple[dict[str, float], list[str]]]


def score_candidates(hcp: HCP, version_ids: list[int], channel: str | None, serving=None) -> Scored:
    """Score every candidate in one vectorised pass of the active model.

    The same computation as ``score_versions`` (the HCP's history once, one
    design matrix, one product), without building a ``Score`` per candidate:
    contributions and drivers are derived only for the items shown. Without
    a trained model it falls back to ``score_versions`` (smoothed popularity).
    """
    if serving is None and version_ids:
        serving = active_model()
    if serving is None or not version_ids:
        by_id = {s.version_id: s for s in score_versions(hcp, version_ids, channel=channel)}
        kept = [by_id[v] for v in version_ids if v in by_id]
        return Scored(
            keep=np.array([v in by_id for v in version_ids], dtype=bool),
            probabilities=np.array([s.probability for s in kept]),
            model_version="",
            fallback=any(s.fallback for s in kept),
            explain=lambda i: (kept[i].contributions, kept[i].drivers),
        )
    rows = serving.item_rows(np.asarray(version_ids, dtype=np.int64))
    keep = rows >= 0
    rows = rows[keep]
    ctx = serving.hcp_context(hcp, rows, channel, time.time())
    X, logits, contributions = serving.evaluate(ctx)

    def explain(i: int) -> tuple[dict[str, float], list[str]]:
        groups = {g: float(contributions[i, j]) for j, g in enumerate(GROUPS)}
        drivers = drivers_for_rows(
            serving, hcp, X[i : i + 1], contributions[i : i + 1], rows[i : i + 1]
        )
        return groups, drivers[0]

    return Scored(
        keep=keep,
        probabilities=sigmoid(logits),
        model_version=serving.model_version,
        fallback=False,
        explain=explain,
    )


_priors: dict[tuple, np.ndarray] = {}


def _group_prior(cat: Catalogue, serving, specialty: str, segment: str) -> np.ndarray:
    """The model's probabilities of every catalogue version for an HCP of this group, cached."""
    key = (cat.key, serving.row_id, specialty, segment)
    prior = _priors.get(key)
    if prior is None:
        if len(_priors) > 500 or any(k[:2] != key[:2] for k in _priors):
            _priors.clear()  # a new catalogue or model: old priors are stale
        prior = group_prior_scores(specialty, segment, [int(v) for v in cat.version_ids])
        _priors[key] = prior
    return prior


def shortlist(
    cat: Catalogue,
    idx: np.ndarray,
    hcp: HCP,
    slots: list[str] | None,
    capped: set[int],
    serving=None,
) -> np.ndarray:
    """At most DELIVERY_SHORTLIST gated candidates (per slot), best first by their group prior.

    Two-stage ranking: the model's prior for the HCP's specialty and segment
    (computed once per catalogue and model, then cached) picks the candidates
    worth the full personal scoring, which then decides. Compliance gating
    already happened: the shortlist only ever narrows the approved set.
    """
    size = settings.DELIVERY_SHORTLIST
    if size <= 0 or len(idx) <= size or serving is None:
        return idx
    prior = _group_prior(cat, serving, hcp.specialty, hcp.segment)[idx]
    # Recently delivered modules go last: they only fill what nothing else can.
    key = prior - 10.0 * np.isin(cat.module_ids[idx], np.fromiter(capped, dtype=np.int64))
    if not slots:
        return np.sort(idx[np.argsort(-key, kind="stable")[:size]])
    per_slot = max(1, size // len(set(slots)))
    chosen = []
    for slot in set(slots):
        mine = np.flatnonzero(cat.message_code[idx] == cat.messages.get(slot, -2))
        chosen.append(mine[np.argsort(-key[mine], kind="stable")[:per_slot]])
    return np.sort(idx[np.concatenate(chosen)]) if chosen else idx[:0]


def recommendation_create(
    *,
    actor,
    req: RecommendationRequest,
    base_url: str = "",
    rng: np.random.Generator | None = None,
) -> RecommendationResult:
    """Rank approved versions for one HCP, store the answer with its propensities, return it."""
    _require(can_recommend(actor), "Only the engine service account or an admin may do this.")
    cat = catalogue_mod.current()
    _validate(req, cat)
    today = catalogue_mod.today()
    hcp, unknown = _hcp_for(req)
    epsilon = float(settings.DELIVERY_EPSILON)
    explore = bool(req.explore)

    reason, open_channels = (None, None) if unknown else _unsubscribed_reason(hcp, req.channel)
    capped_modules, has_history = (set(), False) if unknown else _recently_delivered(hcp)
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
        serving = active_model()  # one query: the model stays the same for this request
        idx = shortlist(cat, idx, hcp, req.slots, capped_modules, serving)
        candidates = [cat.candidates[i] for i in idx]
        scored = score_candidates(hcp, [c.version_id for c in candidates], req.channel, serving)
        candidates = [c for c, kept in zip(candidates, scored.keep, strict=True) if kept]
        probs = scored.probabilities
        fallback = scored.fallback
        model_version = scored.model_version
        capped = np.array([c.module_id in capped_modules for c in candidates], dtype=bool)
        if req.slots:
            messages = np.array([c.message for c in candidates], dtype=object)
            positions = [messages == slot for slot in req.slots]
            positions_labels = list(req.slots)
        else:
            positions = [np.ones(len(candidates), dtype=bool)] * req.k
            positions_labels = [""] * req.k
        picks = choose(
            probs,
            positions,
            capped,
            explore=explore,
            epsilon=epsilon,
            rng=rng or np.random.default_rng(),
        )

    cold_start = unknown or not has_history
    items: list[dict] = []
    rows: list[RecommendationItem] = []
    unfilled: list[str] = []
    rank = 0
    for label, pick in zip(positions_labels, picks, strict=True):
        if pick is None:
            if label:
                unfilled.append(label)
            continue
        rank += 1
        c = candidates[pick.index]
        explanation, drivers = scored.explain(pick.index)
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
            RecommendationItem(
                rank=rank,
                slot=label,
                module_id=c.module_id,
                version_id=c.version_id,
                score=probability,
                propensity=pick.propensity,
                explored=pick.explored,
                frequency_capped=pick.capped,
            )
        )
    with transaction.atomic():
        recommendation = Recommendation.objects.create(
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
            policy=policy_name(explore, epsilon),
            explored=any(p.explored for p in picks if p is not None),
            cold_start=cold_start,
            reason=reason or "",
        )
        for row in rows:
            row.recommendation = recommendation
        RecommendationItem.objects.bulk_create(rows)
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
        events.setdefault(e.pop("module_id"), []).append(e)
    shown = {i.module_id for i in items}
    return {
        "recommendation_id": rec.pk,
        "hcp": rec.hcp_external_id,
        "created_at": rec.created_at,
        "model_version": rec.model_version or None,
        "policy": rec.policy,
        "cold_start": rec.cold_start,
        "reason": rec.reason or None,
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
                "events": events.get(i.module_id, []),
            }
            for i in items
        ],
        # Events that name this recommendation but a module it did not show.
        "unmatched_events": [e for m, evs in events.items() if m not in shown for e in evs],
    }


# --- approved content ---------------------------------------------------------------------

CONTENT_FILTERS = ("channel", "brand", "market", "message", "theme", "tonality", "format")


def content_list(*, actor, filters: dict[str, Any]) -> list[Candidate]:
    """Approved, unexpired versions matching the filters, by module id."""
    _require(can_read_content(actor), "Your role may not read approved content.")
    cat = catalogue_mod.current()
    values = {k: (filters.get(k) or None) for k in CONTENT_FILTERS}
    check_channel(cat, values["channel"])
    check_brand(cat, values["brand"])
    check_market(cat, values["market"])
    for kind in (TagKind.MESSAGE, TagKind.THEME, TagKind.TONALITY, TagKind.FORMAT):
        key = "theme" if kind == TagKind.THEME else str(kind)
        check_tag(cat, kind, values[key], key)
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


def content_get(*, actor, module_id: int) -> Candidate:
    """The version of one module approved now; NotFound when there is none."""
    _require(can_read_content(actor), "Your role may not read approved content.")
    candidate = catalogue_mod.current().for_module(module_id, catalogue_mod.today())
    if candidate is None:
        raise NotFound("This module has no version approved now.", field="module")
    return candidate
