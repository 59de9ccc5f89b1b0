"""Engagement actions: an HCP's engagement profile, and next best actions.

A next best action is (channel, send time, module). Its score is the content
model's engaged probability for the module, all else average, times the
HCP's channel lift (their engaged probability on that channel over their
mean across channels) times the send-time lift (the open probability at that
local slot over their mean slot): the three parts the models learn apart,
multiplied as independent. Compliance gating first, as for recommendations:
only versions approved now for that channel, brand and market are scored.

Frequency: with ``n*`` touches a week recommended, a saturated HCP (more
than ``n*`` in the last 7 days) gets ``hold``; otherwise the earliest send is
when the last 7 days hold at most ``n* - 1`` touches, so sending keeps them at
or under ``n*``. Exploration is epsilon-greedy per rank over the channel, the
send hour and the module, each with its exact propensity; an action's
logged propensity is their product.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.conf import settings

from content_modules.accounts.roles import Role, has_role
from content_modules.affinity import localtime
from content_modules.affinity.models import HCP, EventType, unsubscribed_from
from content_modules.delivery import catalogue as catalogue_mod
from content_modules.delivery import log
from content_modules.delivery import services as delivery
from content_modules.delivery.models import Recommendation
from content_modules.delivery.policy import choose, policy_name, request_rng
from content_modules.errors import InvalidInput, NotFound, PermissionDenied
from content_modules.experiments import assignment as experiments
from content_modules.experiments import policies as arm_policy

from . import learning, serving

MAX_K = 10
MAX_CHANNELS = 20
MIN_HORIZON_HOURS = 1
MAX_HORIZON_HOURS = 30 * 24
HOUR = 3600.0


def can_read_profile(actor) -> bool:
    return has_role(
        actor, Role.ENGINE, Role.ADMIN, Role.AUTHOR, Role.MEDICAL, Role.LEGAL, Role.REGULATORY
    )


# --- the engagement profile ---------------------------------------------------------------


def engagement_profile_get(*, actor, external_id: str, now: float | None = None) -> dict:
    """Channel, send-time, frequency and microsegment of one HCP (404 when unknown).

    One round trip, as for next best actions: the HCP, its events and the active
    engagement model's id come from the delivery snapshot, so the profile and the
    actions read the same history the same way.
    """
    if not can_read_profile(actor):
        raise PermissionDenied("Your role may not read HCP engagement profiles.")
    if not isinstance(external_id, str) or not delivery._EXTERNAL_ID.match(external_id):
        raise InvalidInput(
            "Must be 1-64 characters: letters, digits, '.', '_', ':' or '-'.",
            field="external_id",
        )
    snapshot = delivery._snapshot(external_id)
    if snapshot.hcp is None:
        raise NotFound(f"No HCP {external_id!r}.", field="external_id")
    return serving.profile(snapshot.hcp, snapshot.events, now=now, head_id=snapshot.engagement_head)


# --- next best actions --------------------------------------------------------------------


@dataclass
class ActionRequest:
    hcp: str
    channels: list[str]
    horizon_hours: int = 168
    k: int = 3
    brand: str | None = None
    market: str | None = None
    explore: bool = False
    exclude: list[int] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    sent_bytes: int | None = None


def _validate(req: ActionRequest, cat) -> list[str]:
    if not isinstance(req.channels, list) or not req.channels:
        raise InvalidInput("Give at least one channel.", field="channels")
    if len(req.channels) > MAX_CHANNELS:
        raise InvalidInput(f"At most {MAX_CHANNELS} channels.", field="channels")
    for c in req.channels:
        if not isinstance(c, str):
            raise InvalidInput("Each channel is a channel slug.", field="channels")
        delivery.check_channel(cat, c, "channels")
    if not isinstance(req.horizon_hours, int) or not (
        MIN_HORIZON_HOURS <= req.horizon_hours <= MAX_HORIZON_HOURS
    ):
        raise InvalidInput(
            f"The horizon is {MIN_HORIZON_HOURS} to {MAX_HORIZON_HOURS} hours (30 days).",
            field="horizon_hours",
        )
    if not isinstance(req.k, int) or not 1 <= req.k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}.", field="k")
    delivery.check_brand(cat, req.brand)
    delivery.check_market(cat, req.market)
    return list(dict.fromkeys(req.channels))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def earliest_send(delivered_at: np.ndarray, now: float, per_week: float) -> float:
    """The first instant from ``now`` at which the last 7 days hold at most ``per_week - 1``
    deliveries (so one more keeps them at or under ``per_week``)."""
    allowed = max(int(math.floor(per_week - 1 + 1e-9)), 0)
    recent = np.sort(delivered_at[(delivered_at > now - learning.WEEK) & (delivered_at <= now)])
    if len(recent) <= allowed:
        return now
    # The (allowed + 1)-th most recent delivery must leave the window first.
    return float(recent[::-1][allowed] + learning.WEEK)


@dataclass
class Plan:
    recommendation: Recommendation
    actions: list[dict]
    hold_reason: str | None
    frequency: dict
    engagement_version: str | None
    from_group: bool


def _hcp(req: ActionRequest, snapshot) -> tuple[HCP, bool]:
    if snapshot.hcp is not None:
        return snapshot.hcp, False
    ctx = req.context or {}
    stand_in = HCP(
        external_id=req.hcp,
        specialty=str(ctx.get("specialty") or "")[:64],
        segment=str(ctx.get("segment") or "")[:64],
        region=str(ctx.get("region") or "")[:64],
    )
    stand_in.pk = -1
    return stand_in, True


def next_best_actions(
    *,
    actor,
    req: ActionRequest,
    base_url: str = "",
    rng: np.random.Generator | None = None,
    now: float | None = None,
) -> Plan:
    """What to send, on which channel and when, for one HCP within the horizon; logged."""
    if not delivery.can_recommend(actor):
        raise PermissionDenied("Only the engine service account or an admin may do this.")
    delivery._validate_hcp(req)  # type: ignore[arg-type]  # reads .hcp only
    delivery._validate_context(req)  # type: ignore[arg-type]  # reads .context, .sent_bytes
    snapshot = delivery._snapshot(req.hcp)
    cat = catalogue_mod.current(snapshot.generation)
    channels = _validate(req, cat)
    now = time.time() if now is None else now
    rng = rng or request_rng()
    epsilon = float(settings.DELIVERY_EPSILON)
    explore = bool(req.explore)
    hcp, unknown = _hcp(req, snapshot)
    events = snapshot.events
    # The HCP's arm of the running experiment covering this request (its content policy).
    assigned = experiments.assign(
        snapshot.experiments_head,
        external_id=req.hcp,
        brand=req.brand,
        market=req.market,
        channels=list(channels),
        microsegment=hcp.microsegment or None,
    )
    zone = localtime.zone_name(timezone=hcp.timezone, region=hcp.region, market=req.market or "")
    one = serving.one_hcp(
        specialty=hcp.specialty,
        segment=hcp.segment,
        zone=zone,
        events=events,
        head_id=snapshot.engagement_head,
    )
    frequency = one.frequency(now)
    per_week = one.recommended_per_week()
    gone = events["type"] == EventType.UNSUBSCRIBED
    left = unsubscribed_from(events["channel_slug"][gone])
    open_channels = [] if "*" in left else [c for c in channels if c not in left]

    reason: str | None = None
    if not open_channels:
        reason = "The HCP unsubscribed from every requested channel."
    elif frequency["state"] == "saturated":
        reason = (
            f"Saturated: {frequency['touches_last_7_days']} touches in the last 7 days, "
            f"above the recommended {frequency['recommended_per_week']:g} a week."
        )
    start = end = now
    if reason is None:
        start = earliest_send(one.deliveries.t, now, per_week)
        start = math.ceil(max(start, now) / HOUR) * HOUR
        end = now + req.horizon_hours * HOUR
        if start > end:
            reason = (
                f"At the recommended {frequency['recommended_per_week']:g} touches a week, the "
                f"next touch is due at {_iso(start)}, after the horizon."
            )
    actions: list[dict] = []
    rows: list[dict] = []
    model_version = ""
    if reason is None:
        actions, rows, model_version = _plan(
            req,
            cat,
            snapshot.model_head,
            hcp,
            events,
            one,
            open_channels,
            start,
            end,
            explore,
            epsilon,
            rng,
            base_url,
            assigned=assigned,
        )
        if not actions:
            reason = "No approved content for the requested channels, brand and market."
    recommendation = Recommendation(
        hcp=None if unknown else hcp,
        hcp_external_id=req.hcp,
        kind="next_best_action",
        request={
            "hcp": req.hcp,
            "channels": channels,
            "horizon_hours": req.horizon_hours,
            "k": req.k,
            "brand": req.brand,
            "market": req.market,
            "explore": explore,
            "exclude": req.exclude,
            "context": req.context,
        },
        model_version=model_version,
        policy=policy_name(*arm_policy.exploration(assigned, explore, epsilon)),
        explored=any(a["explored"] for a in actions),
        cold_start=unknown or one.from_group,
        reason=(reason or "")[:200],
        experiment_id=assigned.experiment_id if assigned else None,
        arm=assigned.arm if assigned else "",
    )
    log.store(recommendation, rows)
    return Plan(recommendation, actions, reason, frequency, one.model_version, one.from_group)


def _plan(
    req,
    cat,
    head,
    hcp,
    events,
    one,
    open_channels,
    start,
    end,
    explore,
    epsilon,
    rng,
    base_url,
    assigned=None,
):
    """Rank (channel, send time, module) actions; their answer items and log rows.

    An experiment arm (``assigned``) sets the content policy: which gated modules
    (fixed), their scores (popularity) and how the module is chosen (random:
    uniformly); channel and send time are chosen as without an experiment.
    """
    today = catalogue_mod.today()
    exclude = set(req.exclude)
    per_channel = {
        c: arm_policy.candidates(
            assigned,
            cat.module_ids,
            cat.select(
                today=today, channel=c, brand=req.brand, market=req.market, exclude_modules=exclude
            ),
        )
        for c in open_channels
    }
    # Indices of the catalogue any requested channel may carry, in catalogue order.
    mask = np.zeros(len(cat.candidates), dtype=bool)
    for idx in per_channel.values():
        mask[idx] = True
    union = np.flatnonzero(mask)
    if not len(union):
        return [], [], ""
    scored = arm_policy.score(
        assigned, hcp, cat.version_ids[union], channel=None, events=events, head=head
    )
    module_explore, module_epsilon = arm_policy.exploration(assigned, explore, epsilon)
    union = union[scored.keep]
    probs = scored.probabilities
    capped_modules = delivery._recently_delivered(events)
    capped = np.isin(cat.module_ids[union], np.fromiter(capped_modules, dtype=np.int64))
    # channel lifts (the HCP's engaged probability per channel over their mean)
    ch_index = {slug: i for i, slug in enumerate(one.params.channels)}
    ch_probs = one.state.channel[0]
    share = np.asarray(one.params.metrics.get("channel_share") or [], dtype=np.float64)
    if len(share) != len(ch_probs) or share.sum() <= 0:
        share = np.full(len(ch_probs), 1.0 / max(len(ch_probs), 1))
    # "All else average" for the content model is the logged mix of channels.
    mean_ch = float(ch_probs @ share) if len(ch_probs) else 1.0
    lift = {
        c: (float(ch_probs[ch_index[c]]) / mean_ch if c in ch_index and mean_ch > 0 else 1.0)
        for c in open_channels
    }
    allowed = {}
    for c in open_channels:
        on_channel = np.zeros(len(cat.candidates), dtype=bool)
        on_channel[per_channel[c]] = True
        allowed[c] = on_channel[union]
    # send times: every whole hour in [start, end], scored at its local slot
    n_times = int(math.floor((end - start) / HOUR)) + 1
    times = start + HOUR * np.arange(n_times)
    weekday, hour = localtime.hourly_slots(start, n_times, one.zone)
    grid = one.grid()
    slot_p = grid[weekday.astype(int), hour.astype(int)]
    time_lift = slot_p / max(float(grid.mean()), learning.P_MIN)
    best_time = int(np.argmax(slot_p))  # the earliest of the best
    used = np.zeros(len(union), dtype=bool)
    chosen: list[tuple] = []
    for _rank in range(req.k):
        unused = ~used
        free = {c: allowed[c] & unused for c in open_channels}
        live = [c for c in open_channels if free[c].any()]
        if not live:
            break
        best_score = {c: float(probs[free[c]].max()) * lift[c] for c in live}
        greedy_c = max(live, key=lambda c: (best_score[c], -open_channels.index(c)))
        channel, p_channel = _epsilon_pick(live, greedy_c, explore, epsilon, rng)
        t_index, p_time = _epsilon_pick(list(range(len(times))), best_time, explore, epsilon, rng)
        # Within one channel its lift is a constant factor: the module ranking is probs'.
        picks = choose(
            probs,
            [free[channel]],
            capped,
            explore=module_explore,
            epsilon=module_epsilon,
            rng=rng,
        )
        pick = picks[0]
        if pick is None:
            break
        used[pick.index] = True
        explored = bool(pick.explored or channel != greedy_c or t_index != best_time)
        chosen.append((channel, p_channel, t_index, p_time, pick, explored))
    explained = iter(scored.explain([c[4].index for c in chosen]) if chosen else [])
    engagement_drivers = learning.drivers(one.params, one.state, 0, grid=grid)
    actions, rows = [], []
    for rank, (channel, p_channel, t_index, p_time, pick, explored) in enumerate(chosen, 1):
        c = cat.candidates[int(union[pick.index])]
        content_drivers = next(explained).drivers
        score = combine(float(probs[pick.index]), lift[channel], float(time_lift[t_index]))
        propensity = float(p_channel * p_time * pick.propensity)
        send_at = datetime.fromtimestamp(float(times[t_index]), UTC)
        actions.append(
            {
                "rank": rank,
                "channel": channel,
                "send_at": send_at,
                "module": c.module_id,
                "version": c.number,
                "version_id": c.version_id,
                "score": round(score, 6),
                "propensity": round(propensity, 6),
                "explored": explored,
                "frequency_capped": pick.capped,
                "drivers": engagement_drivers + list(content_drivers),
                "approval_expires_on": c.expires_on,
                "content": c.content_for(base_url),
            }
        )
        rows.append(
            {
                "rank": rank,
                "slot": "",
                "module_id": c.module_id,
                "version_id": c.version_id,
                "score": score,
                "propensity": propensity,
                "explored": explored,
                "frequency_capped": pick.capped,
                "channel": channel,
                "send_at": send_at,
            }
        )
    return actions, rows, scored.model_version or ""


def combine(p_content: float, channel_lift: float, time_lift: float) -> float:
    """The action's engaged probability: the lifts added on the log-odds scale, so a
    strong lift on a likely module stays a probability."""
    p = min(max(p_content, learning.P_MIN), learning.P_MAX)
    logit = math.log(p / (1 - p)) + math.log(max(channel_lift, 1e-6))
    logit += math.log(max(time_lift, 1e-6))
    return 1.0 / (1.0 + math.exp(-logit))


def _epsilon_pick(options: list, greedy, explore: bool, epsilon: float, rng):
    """Greedy, or with probability epsilon a uniform option; with its exact propensity."""
    if not explore or len(options) <= 1:
        return greedy, 1.0
    chosen = options[int(rng.integers(len(options)))] if rng.random() < epsilon else greedy
    return chosen, (1.0 - epsilon) * (chosen == greedy) + epsilon / len(options)
