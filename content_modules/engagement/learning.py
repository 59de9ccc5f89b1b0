"""The engagement model: channel affinity, send-time affinity, saturation, microsegments.

Pure numpy (and scikit-learn's k-means), no Django: the product's training,
its per-request serving and the benchmark worlds (``bench/engagement_world.py``)
run this one code path. A request computes one HCP's profile with the same batch
functions training uses, over a batch of one.

**Deliveries.** Every ``delivered`` event is one exposure. Later responses of
the same HCP to the same version within ``OPEN_WINDOW`` are joined to the
latest delivery before them: an ``opened`` (or a click or read) makes it
*opened*, a click or a read of at least ``READ_DWELL_SECONDS`` makes it
*engaged* (the content model's positive).

**Shrinkage, one rule everywhere.** Each level multiplies its parent's rate by
a relative rate with a gamma prior of mean 1: with ``O`` responses observed and
``E`` expected under the parent, the posterior mean is ``(O + k) / (E + k)``
(Poisson-gamma empirical Bayes). An HCP with no history gets exactly the
group's rate, one with a long history mostly their own. Each strength ``k`` is
chosen from a grid by two-fold held-out log-likelihood on the training
deliveries, so the data decide how far an individual is trusted. For an HCP's
own levels, the upstream HCP factors in that comparison are themselves learned
without the held-out fold (otherwise the HCP's held-out responses leak into the
base and every finer individual level looks useless).

* **Channel affinity** (response: engaged): global rate per channel, then
  specialty x segment group per channel, then the HCP's overall responsiveness,
  then the HCP's own channel ratio: the ratio of their opens by channel (over
  the send-time model and their group's opens by channel; opens outnumber
  engagements several times) times the ratio of their engagements on top.
* **Send-time affinity** (response: opened): the local hour and weekday of the
  delivery, in the HCP's zone. Global hour and weekday factors, group factors,
  the HCP's responsiveness and the HCP's own hour and weekday ratios. Hour
  counts are smoothed circularly over neighbouring hours (a Gaussian whose
  width, per level, is chosen with the strength). The predicted rate of a
  (weekday, hour) slot is their product.
* **Saturation** (response: opened): how the open rate falls with the number of
  touches the HCP had in the 7 days before a delivery, fitted per group as
  ``F(x) = 1`` up to ``tau`` touches, ``exp(-lam (x - tau))`` beyond. A steady
  ``n`` touches a week yields ``n F(n - 1)`` opens, largest at
  ``n* = max(tau + 1, 1 / lam)``: the recommended touches per week, bounded by
  the settings. ``saturation_state`` compares the last 7 days with ``n*``.
  Send time is fitted, then saturation against it, then send time again with
  each delivery's expected opens (and engagements) carrying its fatigue
  ``F(x)`` over the training mean, and saturation once more: a burst of touches
  no longer reads as a bad hour or an unresponsive HCP.
* **Microsegments**: k-means over each HCP's learned deviations (channel,
  daypart, weekend, responsiveness, message/tonality/format lifts), standardised;
  seeded with and matched to the previous model's centroids so segment ids
  stay put; labelled from each centroid's strongest features.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from content_modules.affinity.learning.features import EVENT_CODES, READ_DWELL_SECONDS

DAY = 86400.0
WEEK = 7 * DAY
OPEN_WINDOW = 3 * DAY
HOURS = 24
WEEKDAYS = 7
SLOTS = WEEKDAYS * HOURS
K_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
TAU_GRID = tuple(x / 2 for x in range(0, 21))  # 0, 0.5, ..., 10
LAM_GRID = tuple(round(float(x), 4) for x in np.geomspace(0.02, 2.5, 36))
MAX_TOUCHES = 14  # touches_7d at or above this share one bin
P_MIN, P_MAX = 1e-4, 0.995
STATES = ("undersaturated", "on_target", "saturated")
DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --- deliveries ---------------------------------------------------------------------------


@dataclass
class Deliveries:
    """One row per delivery, with what followed it."""

    hcp: np.ndarray  # int64 row of the HCP (0..n_hcps-1)
    t: np.ndarray  # float64 UTC Unix seconds
    channel: np.ndarray  # int16 code into the channel list, -1 when unknown
    item: np.ndarray  # int64 item row (version), -1 when unknown
    opened: np.ndarray  # bool
    engaged: np.ndarray  # bool
    weekday: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # local, Monday 0
    hour: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # local 0-23
    touches_7d: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @property
    def n(self) -> int:
        return len(self.t)

    def take(self, mask: np.ndarray) -> Deliveries:
        return Deliveries(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


def response_codes(etype: np.ndarray, dwell: np.ndarray | None = None) -> np.ndarray:
    """Per event: 0 no response (a delivery too), 1 opened, 2 engaged (as the content model)."""
    etype = np.asarray(etype)
    # A missing (NaN) dwell compares False, as a dwell of 0 would.
    dwell = np.zeros(len(etype)) if dwell is None else np.asarray(dwell, float)
    out = np.zeros(len(etype), dtype=np.int8)
    out[etype == EVENT_CODES["opened"]] = 1
    out[etype == EVENT_CODES["read"]] = 1
    out[etype == EVENT_CODES["clicked"]] = 2
    out[(etype == EVENT_CODES["read"]) & (dwell >= READ_DWELL_SECONDS)] = 2
    return out


def join_deliveries(
    hcp: np.ndarray,
    t: np.ndarray,
    etype: np.ndarray,
    channel: np.ndarray,
    item: np.ndarray,
    dwell: np.ndarray | None = None,
    *,
    window: float = OPEN_WINDOW,
) -> Deliveries:
    """Deliveries from raw events (``features.EVENT_CODES`` types), responses joined.

    A response belongs to the latest delivery of the same (HCP, item) at or
    before it, within ``window`` seconds; a response with no such delivery is
    dropped (it answers something this log does not hold).
    """
    hcp = np.asarray(hcp, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    item = np.asarray(item, dtype=np.int64)
    etype = np.asarray(etype)
    is_delivery = etype == EVENT_CODES["delivered"]
    response = response_codes(etype, dwell)
    n_del = int(is_delivery.sum())
    opened = np.zeros(n_del, dtype=bool)
    engaged = np.zeros(n_del, dtype=bool)
    if n_del and len(t):
        # Sort by (hcp, item, t), deliveries before responses at the same instant.
        order = np.lexsort((~is_delivery, t, item, hcp))
        s_hcp, s_item, s_t = hcp[order], item[order], t[order]
        s_del = is_delivery[order]
        delivery_number = np.full(len(order), -1, dtype=np.int64)
        delivery_number[is_delivery] = np.arange(n_del)  # number in input order
        s_number = delivery_number[order]
        pos = np.where(s_del, np.arange(len(order)), -1)
        last = np.maximum.accumulate(pos)  # the latest delivery at or before each row
        has = last >= 0
        idx = np.where(has, last, 0)
        same = (
            has
            & (s_hcp[idx] == s_hcp)
            & (s_item[idx] == s_item)
            & (s_t - s_t[idx] <= window)
            & ~s_del
        )
        s_resp = response[order]
        target = s_number[idx]
        opened[target[same & (s_resp >= 1)]] = True
        engaged[target[same & (s_resp == 2)]] = True
    d = Deliveries(
        hcp=hcp[is_delivery],
        t=t[is_delivery],
        channel=np.asarray(channel, dtype=np.int16)[is_delivery],
        item=item[is_delivery],
        opened=opened,
        engaged=engaged,
        weekday=np.zeros(n_del, np.int8),
        hour=np.zeros(n_del, np.int8),
    )
    d.touches_7d = touches_before(d.hcp, d.t)
    return d


def touches_before(hcp: np.ndarray, t: np.ndarray, span: float = WEEK) -> np.ndarray:
    """Per delivery: deliveries to the same HCP in the ``span`` seconds before it."""
    n = len(t)
    if not n:
        return np.zeros(0, np.int32)
    t0 = float(t.min())
    width = float(t.max()) - t0 + 2 * span + 1.0
    key = hcp.astype(np.float64) * width + (t - t0)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key - span, side="left")
    # Ties at the same instant count as earlier: the position among equal keys.
    left_equal = np.searchsorted(sorted_key, sorted_key, side="left")
    counts = np.empty(n, dtype=np.int32)
    counts[order] = (left_equal - first).astype(np.int32)
    return counts


def localise(d: Deliveries, zone_of_row: Sequence[str], local_slots: Callable) -> Deliveries:
    """Fill each delivery's local weekday and hour from its HCP's zone.

    ``local_slots(epoch_seconds, zone) -> (weekday, hour)`` converts (DST
    included: ``affinity.localtime.local_slots``).
    """
    zones = np.asarray(list(zone_of_row), dtype=object)
    weekday = np.zeros(d.n, np.int8)
    hour = np.zeros(d.n, np.int8)
    if d.n:
        row_zone = zones[d.hcp] if len(zones) else np.full(d.n, "UTC", dtype=object)
        for zone in set(row_zone.tolist()):
            mask = row_zone == zone
            weekday[mask], hour[mask] = local_slots(d.t[mask], zone)
    d.weekday, d.hour = weekday, hour
    return d


# --- the shrinkage rule -------------------------------------------------------------------


def shrink(observed: np.ndarray, expected: np.ndarray, k: float) -> np.ndarray:
    """Posterior mean of a relative rate with a Gamma(k, k) prior: (O + k) / (E + k)."""
    return (observed + k) / (expected + k)


def _choose_k(
    fold: np.ndarray,
    y: np.ndarray,
    base: np.ndarray,
    key: np.ndarray,
    n_keys: int,
    smooth: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """The strength whose ratios, learned on one fold, best predict the other (both ways).

    ``base`` is each row's rate under the parent level, ``key`` the row's cell
    (e.g. HCP x hour); the cell's ratio multiplies ``base``.
    """
    return _choose_k_smooth(fold, y, base, key, n_keys, (smooth,))[0]


def _choose_k_smooth(
    fold: np.ndarray,
    y: np.ndarray,
    base: np.ndarray | Sequence[np.ndarray],
    key: np.ndarray,
    n_keys: int,
    smooths: Sequence[Callable[[np.ndarray], np.ndarray] | None] = (None,),
) -> tuple[float, int]:
    """As ``_choose_k``, jointly over a strength and a smoother: (k, the smoother's index).

    ``base`` may be a pair: the rates under the parent levels as learned without
    fold 0, and without fold 1 (so an HCP's own upstream factors, learned from the
    held-out fold too, do not leak it into the comparison). ``y`` is 0 or 1.
    """
    if len(y) < 50:
        return float(K_GRID[len(K_GRID) // 2]), 0
    bases = [base, base] if isinstance(base, np.ndarray) else list(base)
    raw = []  # per held-out fold f: the other fold's sums
    held = []  # per held-out fold f: its responders' and non-responders' (key, base)
    for f in (0, 1):
        m = fold != f
        raw.append(
            (
                np.bincount(key[m], weights=y[m], minlength=n_keys),
                np.bincount(key[m], weights=bases[f][m], minlength=n_keys),
            )
        )
        hit, miss = (fold == f) & (y > 0), (fold == f) & (y <= 0)
        held.append((key[hit], bases[f][hit], key[miss], bases[f][miss]))
    best, best_k, best_s = -np.inf, float(K_GRID[0]), 0
    for index, smooth in enumerate(smooths):
        sums = [(o, e) if smooth is None else (smooth(o), smooth(e)) for o, e in raw]
        for k in K_GRID:
            total = 0.0
            for f in (0, 1):
                o, e = sums[f]
                ratio = shrink(o, e, k)
                k_hit, b_hit, k_miss, b_miss = held[f]
                total += float(np.log(np.clip(b_hit * ratio[k_hit], P_MIN, P_MAX)).sum())
                total += float(np.log1p(-np.clip(b_miss * ratio[k_miss], P_MIN, P_MAX)).sum())
            if total > best + 1e-9:
                best, best_k, best_s = total, float(k), index
    return best_k, best_s


def _fold_ratios(
    fold: np.ndarray,
    y: np.ndarray,
    bases: Sequence[np.ndarray],
    key: np.ndarray,
    n_keys: int,
    k: float,
    smooth: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Per held-out fold f: the ratio of each row's cell learned without fold f."""
    out = []
    for f in (0, 1):
        m = fold != f
        o = np.bincount(key[m], weights=y[m], minlength=n_keys)
        e = np.bincount(key[m], weights=bases[f][m], minlength=n_keys)
        if smooth is not None:
            o, e = smooth(o), smooth(e)
        out.append(shrink(o, e, k)[key])
    return out


HOUR_WIDTHS = (0.0, 1.0, 1.5, 2.5, 4.0)  # hours; 0: the 1/4, 1/2, 1/4 kernel


@functools.lru_cache(maxsize=64)
def _hour_kernel(width: float) -> np.ndarray:
    """(24, 24) circulant: column j spreads hour j's count over its neighbours (read-only,
    cached: serving smooths one HCP's hours twice per request)."""
    offsets = (np.arange(HOURS)[:, None] - np.arange(HOURS)[None, :] + 12) % HOURS - 12
    if width <= 0:
        k = np.where(offsets == 0, 0.5, np.where(np.abs(offsets) == 1, 0.25, 0.0))
    else:
        k = np.exp(-0.5 * (offsets / width) ** 2)
        k = k / k.sum(axis=0, keepdims=True)
    k = np.ascontiguousarray(k.T)  # as _smooth_hours multiplies by it
    k.setflags(write=False)
    return k


def _smooth_hours(counts: np.ndarray, width: float = 0.0) -> np.ndarray:
    """Smooth per-hour counts circularly with a Gaussian of ``width`` hours (0: 1/4, 1/2, 1/4).

    Works on any array whose last axis is the 24 hours, or on a flat array of
    consecutive 24-hour blocks (cells keyed ``row * 24 + hour``).
    """
    shaped = counts.reshape(-1, HOURS)
    return (shaped @ _hour_kernel(float(width))).reshape(counts.shape)


def _hour_smoother(width: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda counts: _smooth_hours(counts, width)


def _circular_hours(counts: np.ndarray) -> np.ndarray:
    """Smooth per-hour counts over neighbouring hours (weights 1/4, 1/2, 1/4), circularly.

    Works on any array whose last axis is the 24 hours, or on a flat array of
    consecutive 24-hour blocks (cells keyed ``row * 24 + hour``).
    """
    shaped = counts.reshape(-1, HOURS)
    out = 0.5 * shaped + 0.25 * np.roll(shaped, 1, axis=1) + 0.25 * np.roll(shaped, -1, axis=1)
    return out.reshape(counts.shape)


def _ratio(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.divide(o, e, out=np.ones_like(o, dtype=np.float64), where=e > 0)


# --- the fitted parameters ----------------------------------------------------------------


@dataclass
class Saturation:
    tau: float
    lam: float

    def factor(self, touches: np.ndarray) -> np.ndarray:
        x = np.asarray(touches, dtype=np.float64)
        return np.exp(-self.lam * np.maximum(0.0, x - self.tau))

    def best_per_week(self, lo: float, hi: float) -> float:
        n = max(self.tau + 1.0, 1.0 / self.lam if self.lam > 0 else hi)
        return float(min(max(n, lo), hi))


@dataclass
class EngagementParams:
    """What serving needs: global and group factors, the strengths, saturation, segments."""

    channels: list[str]
    n_groups: int
    # channel model (engaged)
    ch_global: np.ndarray  # (C,)
    ch_group: np.ndarray  # (G + 1, C); row G: no group (the global rates)
    k_ch_resp: float
    k_ch: float
    # send-time model (opened)
    open_base: float
    hour_global: np.ndarray  # (24,) factors
    weekday_global: np.ndarray  # (7,)
    group_base: np.ndarray  # (G + 1,)
    hour_group: np.ndarray  # (G + 1, 24)
    weekday_group: np.ndarray  # (G + 1, 7)
    k_open_resp: float
    k_hour: float
    k_weekday: float
    # saturation, per group (row G: global)
    sat_tau: np.ndarray  # (G + 1,)
    sat_lam: np.ndarray  # (G + 1,)
    min_per_week: float = 0.5
    max_per_week: float = 7.0
    # microsegments
    feature_names: list[str] = field(default_factory=list)
    feature_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    feature_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    segment_ids: list[str] = field(default_factory=list)
    segment_labels: list[str] = field(default_factory=list)
    segment_features: list[list[dict]] = field(default_factory=list)
    n_items_tags: dict = field(default_factory=dict)  # vocab sizes of the item tags used
    metrics: dict = field(default_factory=dict)
    group_names: list[str] = field(default_factory=list)  # "specialty|segment" per group code

    def group_row(self, group: np.ndarray) -> np.ndarray:
        g = np.asarray(group, dtype=np.int64)
        return np.where((g >= 0) & (g < self.n_groups), g, self.n_groups)

    def saturation(self, group: int) -> Saturation:
        row = int(self.group_row(np.array([group]))[0])
        return Saturation(float(self.sat_tau[row]), float(self.sat_lam[row]))

    def recommended_per_week(self, group: np.ndarray) -> np.ndarray:
        rows = self.group_row(group)
        return np.array(
            [
                Saturation(float(self.sat_tau[r]), float(self.sat_lam[r])).best_per_week(
                    self.min_per_week, self.max_per_week
                )
                for r in rows
            ]
        )

    # -- storage --
    _ARRAYS = (
        "ch_global",
        "ch_group",
        "hour_global",
        "weekday_global",
        "group_base",
        "hour_group",
        "weekday_group",
        "sat_tau",
        "sat_lam",
        "feature_mean",
        "feature_sd",
        "centroids",
    )

    def to_bytes(self) -> bytes:
        meta = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in self._ARRAYS
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            **{name: getattr(self, name) for name in self._ARRAYS},
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> EngagementParams:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            arrays = {name: z[name] for name in cls._ARRAYS}
        return cls(**meta, **arrays)


def default_params(channels: list[str], per_week: float = 1.0) -> EngagementParams:
    """The model before any fit: every channel, hour and weekday alike, ``per_week``
    touches a week recommended (tau = per_week - 1, a steep fall beyond)."""
    C = len(channels)
    return EngagementParams(
        channels=list(channels),
        n_groups=0,
        ch_global=np.full(C, 0.05),
        ch_group=np.full((1, C), 0.05),
        k_ch_resp=8.0,
        k_ch=8.0,
        open_base=0.25,
        hour_global=np.ones(HOURS),
        weekday_global=np.ones(WEEKDAYS),
        group_base=np.ones(1),
        hour_group=np.ones((1, HOURS)),
        weekday_group=np.ones((1, WEEKDAYS)),
        k_open_resp=8.0,
        k_hour=8.0,
        k_weekday=8.0,
        sat_tau=np.array([max(per_week - 1.0, 0.0)]),
        sat_lam=np.array([2.5]),
        min_per_week=per_week,
        max_per_week=per_week,
    )


@dataclass
class FitSettings:
    min_per_week: float = 0.5
    max_per_week: float = 7.0
    n_segments: int = 6
    seed: int = 0


# --- the per-HCP part: the same functions for a batch of all HCPs or of one ---------------


@dataclass
class HcpState:
    """Per-HCP estimates for a batch of HCPs (rows 0..n-1)."""

    n_deliveries: np.ndarray  # (n,)
    channel: np.ndarray  # (n, C) engaged probability per channel
    channel_ratio: np.ndarray  # (n, C) the HCP's own channel ratio (1: as the group)
    engage_resp: np.ndarray  # (n,)
    open_resp: np.ndarray  # (n,)
    hour_ratio: np.ndarray  # (n, 24)
    weekday_ratio: np.ndarray  # (n, 7)
    group_row: np.ndarray  # (n,)

    def slot_grid(self, p: EngagementParams, rows: np.ndarray | None = None) -> np.ndarray:
        """(n, 7, 24) predicted open probability of a delivery at each local slot."""
        rows = np.arange(len(self.n_deliveries)) if rows is None else rows
        g = self.group_row[rows]
        hour = p.hour_global[None, :] * p.hour_group[g] * self.hour_ratio[rows]
        wday = p.weekday_global[None, :] * p.weekday_group[g] * self.weekday_ratio[rows]
        scale = p.open_base * p.group_base[g] * self.open_resp[rows]
        grid = scale[:, None, None] * wday[:, :, None] * hour[:, None, :]
        return np.clip(grid, P_MIN, P_MAX)


def _channel_expected(p: EngagementParams, d: Deliveries, group_row: np.ndarray) -> np.ndarray:
    ch = np.where(d.channel >= 0, d.channel, 0).astype(np.int64)
    base = p.ch_group[group_row[d.hcp], ch]
    return np.where(d.channel >= 0, base, 0.0)


def _open_expected(p: EngagementParams, d: Deliveries, group_row: np.ndarray) -> np.ndarray:
    g = group_row[d.hcp]
    h, w = d.hour.astype(np.int64), d.weekday.astype(np.int64)
    return (
        p.open_base
        * p.group_base[g]
        * p.hour_global[h]
        * p.hour_group[g, h]
        * p.weekday_global[w]
        * p.weekday_group[g, w]
    )


def _relative_fatigue(p: EngagementParams, d: Deliveries, group_row: np.ndarray) -> np.ndarray:
    """Each delivery's saturation factor over the training mean (1 for a model fitted
    without it)."""
    mean_factor = p.metrics.get("saturation", {}).get("mean_factor")
    if not mean_factor or not d.n or not len(d.touches_7d):
        return np.ones(d.n)
    return _fatigue(p.sat_tau, p.sat_lam, group_row[d.hcp], d.touches_7d) / float(mean_factor)


def _metric_array(p: EngagementParams, section: str, name: str) -> np.ndarray:
    """``p.metrics[section][name]`` (a JSON list) as a float array, converted once per list."""
    raw = p.metrics[section][name]
    cache = p.__dict__.setdefault("_metric_arrays", {})
    found = cache.get((section, name))
    if found is None or found[0] is not raw:
        found = (raw, np.asarray(raw, dtype=np.float64))
        cache[(section, name)] = found
    return found[1]


def hcp_state(p: EngagementParams, d: Deliveries, group: np.ndarray) -> HcpState:
    """Every HCP's shrunk estimates from their deliveries (rows of ``group``)."""
    n = len(group)
    C = len(p.channels)
    grow = p.group_row(group)
    known = d.channel >= 0
    y_e = d.engaged.astype(np.float64)
    y_o = d.opened.astype(np.float64)
    fatigue = _relative_fatigue(p, d, grow)
    # send time: responsiveness, then the hour and weekday ratios
    e_o = _open_expected(p, d, grow) * fatigue
    o_h = np.bincount(d.hcp, weights=y_o, minlength=n)
    eo_h = np.bincount(d.hcp, weights=e_o, minlength=n)
    open_resp = shrink(o_h, eo_h, p.k_open_resp)
    e_o = e_o * open_resp[d.hcp]
    h = d.hour.astype(np.int64)
    hkey = d.hcp * HOURS + h
    smoothing = p.metrics.get("smoothing", {})
    width = float(smoothing.get("hour_hcp", 0.0))
    o_hr = _smooth_hours(np.bincount(hkey, weights=y_o, minlength=n * HOURS), width)
    e_hr = _smooth_hours(np.bincount(hkey, weights=e_o, minlength=n * HOURS), width)
    hour_ratio = shrink(o_hr, e_hr, p.k_hour).reshape(n, HOURS)
    wkey = d.hcp * WEEKDAYS + d.weekday.astype(np.int64)
    e_w = e_o * hour_ratio[d.hcp, h]
    o_wd = np.bincount(wkey, weights=y_o, minlength=n * WEEKDAYS)
    e_wd = np.bincount(wkey, weights=e_w, minlength=n * WEEKDAYS)
    weekday_ratio = shrink(o_wd, e_wd, p.k_weekday).reshape(n, WEEKDAYS)
    e_full = e_w * weekday_ratio[d.hcp, d.weekday.astype(np.int64)]
    # channel: engaged responsiveness, the HCP's opens by channel, then their engaged ratio
    e_ch = _channel_expected(p, d, grow) * fatigue
    s_h = np.bincount(d.hcp[known], weights=y_e[known], minlength=n)
    e_h = np.bincount(d.hcp[known], weights=e_ch[known], minlength=n)
    engage_resp = shrink(s_h, e_h, p.k_ch_resp)
    ch = np.where(known, d.channel, 0).astype(np.int64)
    key = d.hcp * C + ch
    open_ratio = np.ones((n, C))
    channel_open = p.metrics.get("channel_open")
    if channel_open:
        factor = _metric_array(p, "channel_open", "group")[grow[d.hcp], ch]
        open_ratio = shrink(
            np.bincount(key[known], weights=y_o[known], minlength=n * C),
            np.bincount(key[known], weights=(e_full * factor)[known], minlength=n * C),
            float(channel_open["k"]),
        ).reshape(n, C)
    s_hc = np.bincount(key[known], weights=y_e[known], minlength=n * C).reshape(n, C)
    e_hc = np.bincount(
        key[known],
        weights=(e_ch * engage_resp[d.hcp] * open_ratio[d.hcp, ch])[known],
        minlength=n * C,
    ).reshape(n, C)
    channel_ratio = open_ratio * shrink(s_hc, e_hc, p.k_ch)
    channel = np.minimum(
        np.maximum(p.ch_group[grow] * engage_resp[:, None] * channel_ratio, P_MIN), P_MAX
    )
    return HcpState(
        n_deliveries=np.bincount(d.hcp, minlength=n),
        channel=channel,
        channel_ratio=channel_ratio,
        engage_resp=engage_resp,
        open_resp=open_resp,
        hour_ratio=hour_ratio,
        weekday_ratio=weekday_ratio,
        group_row=grow,
    )


def seen_channels(p: EngagementParams) -> np.ndarray:
    """Which channels the fit saw deliveries on (all of them for a model that says nothing)."""
    seen = np.asarray(p.metrics.get("channels_seen") or [], dtype=bool)
    return seen if len(seen) == len(p.channels) else np.ones(len(p.channels), dtype=bool)


def saturation_state(touches_7d: float, recommended_per_week: float) -> str:
    """``undersaturated`` with room for another touch, ``on_target`` at the
    recommendation, ``saturated`` above it."""
    if touches_7d > recommended_per_week:
        return "saturated"
    if touches_7d > recommended_per_week - 1:
        return "on_target"
    return "undersaturated"


def best_slots(grid: np.ndarray, top: int = 3) -> list[tuple[int, int, float]]:
    """The ``top`` (weekday, hour, probability) slots of one HCP's 7 x 24 grid, best first."""
    flat = grid.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:top]
    return [(int(i // HOURS), int(i % HOURS), float(flat[i])) for i in order]


# --- fitting ------------------------------------------------------------------------------


def _fit_saturation(y: np.ndarray, base: np.ndarray, touches: np.ndarray) -> tuple[float, float]:
    """(tau, lam) maximising the binomial likelihood of ``base * F(touches)``.

    ``base`` already carries every other factor; each candidate ``tau`` gets its
    own level, refitted as the ratio of opens to expected at or below it.
    """
    if len(y) < 200:
        return float(TAU_GRID[-1]), float(LAM_GRID[0])
    x = np.minimum(touches, MAX_TOUCHES).astype(np.int64)
    o = np.bincount(x, weights=y, minlength=MAX_TOUCHES + 1)
    e = np.bincount(x, weights=base, minlength=MAX_TOUCHES + 1)
    n = np.bincount(x, minlength=MAX_TOUCHES + 1).astype(np.float64)
    mean_base = np.divide(e, n, out=np.zeros_like(e), where=n > 0)
    xs = np.arange(MAX_TOUCHES + 1, dtype=np.float64)
    taus = np.asarray(TAU_GRID, dtype=np.float64)[:, None, None]
    lams = np.asarray(LAM_GRID, dtype=np.float64)[None, :, None]
    f = np.exp(-lams * np.maximum(0.0, xs[None, None, :] - taus))  # (tau, lam, touches)
    level = o.sum() / np.maximum((e * f).sum(axis=2, keepdims=True), 1e-9)
    q = np.clip(mean_base * f * level, P_MIN, P_MAX)
    ll = np.sum(o * np.log(q) + (n - o) * np.log1p(-q), axis=2)
    i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)  # the first best, tau-major
    return float(TAU_GRID[i]), float(LAM_GRID[j])


def _fatigue(sat_tau: np.ndarray, sat_lam: np.ndarray, grow: np.ndarray, touches) -> np.ndarray:
    """Each delivery's saturation factor F(touches_7d) under its group's (tau, lam)."""
    x = np.asarray(touches, dtype=np.float64)
    return np.exp(-sat_lam[grow] * np.maximum(0.0, x - sat_tau[grow]))


def _fit_group_saturation(
    y: np.ndarray, base: np.ndarray, touches: np.ndarray, hg: np.ndarray, G: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(tau, lam) per group row (row G: global), a group with few deliveries on the global."""
    tau_all, lam_all = _fit_saturation(y, base, touches)
    sat_tau = np.full(G + 1, tau_all)
    sat_lam = np.full(G + 1, lam_all)
    for g in range(G):
        m = hg == g
        if m.sum() >= 2000:
            sat_tau[g], sat_lam[g] = _fit_saturation(y[m], base[m], touches[m])
    return sat_tau, sat_lam, tau_all, lam_all


def _fit_send_time(
    d: Deliveries,
    y_o: np.ndarray,
    hg: np.ndarray,
    G: int,
    n: int,
    fold: np.ndarray,
    fatigue: np.ndarray,
) -> dict:
    """The send-time chain (global, group, HCP) on opens, each delivery's expected opens
    carrying ``fatigue`` (its relative saturation factor, mean 1)."""
    h, w = d.hour.astype(np.int64), d.weekday.astype(np.int64)
    open_base = float((y_o.sum() + 1.0) / (d.n + 2.0))
    base = open_base * fatigue
    hour_global = shrink(
        _circular_hours(np.bincount(h, weights=y_o, minlength=HOURS)),
        _circular_hours(np.bincount(h, weights=base, minlength=HOURS)),
        4.0,
    )
    base = base * hour_global[h]
    weekday_global = shrink(
        np.bincount(w, weights=y_o, minlength=WEEKDAYS),
        np.bincount(w, weights=base, minlength=WEEKDAYS),
        4.0,
    )
    base = base * weekday_global[w]
    k_gb = _choose_k(fold, y_o, base, hg, G + 1)
    group_base = shrink(
        np.bincount(hg, weights=y_o, minlength=G + 1),
        np.bincount(hg, weights=base, minlength=G + 1),
        k_gb,
    )
    group_base[G] = 1.0
    base = base * group_base[hg]
    ghkey = hg * HOURS + h
    smoothers = [_hour_smoother(width) for width in HOUR_WIDTHS]
    k_gh, i_gh = _choose_k_smooth(fold, y_o, base, ghkey, (G + 1) * HOURS, smoothers)
    w_gh = HOUR_WIDTHS[i_gh]
    hour_group = shrink(
        _smooth_hours(np.bincount(ghkey, weights=y_o, minlength=(G + 1) * HOURS), w_gh),
        _smooth_hours(np.bincount(ghkey, weights=base, minlength=(G + 1) * HOURS), w_gh),
        k_gh,
    ).reshape(G + 1, HOURS)
    hour_group[G] = 1.0
    base = base * hour_group[hg, h]
    gwkey = hg * WEEKDAYS + w
    k_gw = _choose_k(fold, y_o, base, gwkey, (G + 1) * WEEKDAYS)
    weekday_group = shrink(
        np.bincount(gwkey, weights=y_o, minlength=(G + 1) * WEEKDAYS),
        np.bincount(gwkey, weights=base, minlength=(G + 1) * WEEKDAYS),
        k_gw,
    ).reshape(G + 1, WEEKDAYS)
    weekday_group[G] = 1.0
    base = base * weekday_group[hg, w]
    # the HCP's own: responsiveness, hour, weekday; each strength judged against upstream
    # factors learned without the held-out fold
    k_open_resp, _ = _choose_k_smooth(fold, y_o, base, d.hcp, n)
    resp_o = shrink(
        np.bincount(d.hcp, weights=y_o, minlength=n),
        np.bincount(d.hcp, weights=base, minlength=n),
        k_open_resp,
    )
    folds = [base * r for r in _fold_ratios(fold, y_o, [base, base], d.hcp, n, k_open_resp)]
    base = base * resp_o[d.hcp]
    hkey = d.hcp * HOURS + h
    k_hour, i_hour = _choose_k_smooth(fold, y_o, folds, hkey, n * HOURS, smoothers)
    w_hour = HOUR_WIDTHS[i_hour]
    hour_ratio = shrink(
        _smooth_hours(np.bincount(hkey, weights=y_o, minlength=n * HOURS), w_hour),
        _smooth_hours(np.bincount(hkey, weights=base, minlength=n * HOURS), w_hour),
        k_hour,
    ).reshape(n, HOURS)
    folds = [
        b * r
        for b, r in zip(
            folds,
            _fold_ratios(fold, y_o, folds, hkey, n * HOURS, k_hour, smoothers[i_hour]),
            strict=True,
        )
    ]
    base = base * hour_ratio[d.hcp, h]
    wkey = d.hcp * WEEKDAYS + w
    k_weekday, _ = _choose_k_smooth(fold, y_o, folds, wkey, n * WEEKDAYS)
    weekday_ratio = shrink(
        np.bincount(wkey, weights=y_o, minlength=n * WEEKDAYS),
        np.bincount(wkey, weights=base, minlength=n * WEEKDAYS),
        k_weekday,
    ).reshape(n, WEEKDAYS)
    full = np.clip(base * weekday_ratio[d.hcp, w], P_MIN, P_MAX)
    full_folds = [
        np.clip(b * r, P_MIN, P_MAX)
        for b, r in zip(
            folds,
            _fold_ratios(fold, y_o, folds, wkey, n * WEEKDAYS, k_weekday),
            strict=True,
        )
    ]
    return {
        "open_base": open_base,
        "hour_global": hour_global,
        "weekday_global": weekday_global,
        "group_base": group_base,
        "hour_group": hour_group,
        "weekday_group": weekday_group,
        "k_gb": k_gb,
        "k_gh": k_gh,
        "k_gw": k_gw,
        "k_open_resp": k_open_resp,
        "k_hour": k_hour,
        "k_weekday": k_weekday,
        "w_gh": w_gh,
        "w_hour": w_hour,
        "full": full,
        "full_folds": full_folds,
    }


def fit(
    d: Deliveries,
    group: np.ndarray,
    n_groups: int,
    channels: list[str],
    *,
    settings: FitSettings | None = None,
    item_tags: dict[str, np.ndarray] | None = None,
    previous: EngagementParams | None = None,
    tag_names: dict[str, list[str]] | None = None,
) -> tuple[EngagementParams, HcpState, np.ndarray]:
    """Fit the engagement model on localised deliveries.

    ``group`` is each HCP row's specialty x segment code (-1 none). Answers the
    parameters, every HCP's state, and each HCP's microsegment (an index into
    ``params.segment_ids``). ``item_tags`` maps a tag kind to each item row's code
    (for the content part of the segments' features); ``previous`` keeps the
    segments' ids stable.
    """
    s = settings or FitSettings()
    C, G = len(channels), n_groups
    rng = np.random.default_rng(s.seed)
    fold = rng.integers(0, 2, size=d.n)
    group = np.asarray(group, dtype=np.int64)
    grow = np.where((group >= 0) & (group < G), group, G)
    hg = grow[d.hcp]
    known = d.channel >= 0
    y_e = d.engaged.astype(np.float64)
    y_o = d.opened.astype(np.float64)
    ch = np.where(known, d.channel, 0).astype(np.int64)
    n = len(group)

    # send time, then saturation against it, then send time again against the fatigue the
    # saturation explains (touches are not uniform over HCPs or time: without it, a burst
    # of touches would read as a bad hour or an unresponsive HCP)
    touches = d.touches_7d
    st = _fit_send_time(d, y_o, hg, G, n, fold, np.ones(d.n))
    sat_tau, sat_lam, tau_all, lam_all = _fit_group_saturation(y_o, st["full"], touches, hg, G)
    fatigue = _fatigue(sat_tau, sat_lam, hg, touches)
    mean_factor = float(fatigue.mean()) if d.n else 1.0
    st = _fit_send_time(d, y_o, hg, G, n, fold, fatigue / mean_factor)
    sat_tau, sat_lam, tau_all, lam_all = _fit_group_saturation(
        y_o, st["full"] / (fatigue / mean_factor), touches, hg, G
    )
    fatigue = _fatigue(sat_tau, sat_lam, hg, touches)
    mean_factor = float(fatigue.mean()) if d.n else 1.0
    rel_fatigue = fatigue / mean_factor

    # channel: global, then group (strength chosen on held-out folds), on engaged deliveries
    # whose expectation carries their fatigue
    s_c = np.bincount(ch[known], weights=y_e[known], minlength=C)
    n_c = np.bincount(ch[known], minlength=C).astype(np.float64)
    overall = (y_e[known].sum() + 1.0) / (known.sum() + 2.0)
    ch_global = (s_c + 2.0 * overall) / (n_c + 2.0)
    base_c = ch_global[ch] * rel_fatigue
    gkey = hg * C + ch
    k_g = _choose_k(fold[known], y_e[known], base_c[known], gkey[known], (G + 1) * C)
    s_gc = np.bincount(gkey[known], weights=y_e[known], minlength=(G + 1) * C)
    e_gc = np.bincount(gkey[known], weights=base_c[known], minlength=(G + 1) * C)
    ch_group = (ch_global[None, :] * shrink(s_gc, e_gc, k_g).reshape(G + 1, C)).copy()
    ch_group[G] = ch_global
    base_gc = ch_group[hg, ch] * rel_fatigue
    k_ch_resp = _choose_k(fold[known], y_e[known], base_gc[known], d.hcp[known], n)
    resp_folds = _fold_ratios(
        fold[known], y_e[known], [base_gc[known]] * 2, d.hcp[known], n, k_ch_resp
    )
    # opens by channel: the global and group factors over the send-time model, then the
    # HCP's own (more opens than engagements: a sharper read of the HCP's channel)
    e_open, e_open_folds = st["full"], st["full_folds"]
    ch_open_global = shrink(
        np.bincount(ch[known], weights=y_o[known], minlength=C),
        np.bincount(ch[known], weights=e_open[known], minlength=C),
        4.0,
    )
    base_o = e_open * ch_open_global[ch]
    k_og = _choose_k(fold[known], y_o[known], base_o[known], gkey[known], (G + 1) * C)
    ch_open = ch_open_global[None, :] * shrink(
        np.bincount(gkey[known], weights=y_o[known], minlength=(G + 1) * C),
        np.bincount(gkey[known], weights=base_o[known], minlength=(G + 1) * C),
        k_og,
    ).reshape(G + 1, C)
    ch_open[G] = ch_open_global
    hkey_c = d.hcp * C + ch
    o_folds = [f[known] * ch_open[hg, ch][known] for f in e_open_folds]
    k_och, _ = _choose_k_smooth(fold[known], y_o[known], o_folds, hkey_c[known], n * C)
    open_ratio_folds = _fold_ratios(fold[known], y_o[known], o_folds, hkey_c[known], n * C, k_och)
    k_ch, _ = _choose_k_smooth(
        fold[known],
        y_e[known],
        [base_gc[known] * r * o for r, o in zip(resp_folds, open_ratio_folds, strict=True)],
        hkey_c[known],
        n * C,
    )

    open_base = st["open_base"]
    hour_global, weekday_global = st["hour_global"], st["weekday_global"]
    group_base, hour_group, weekday_group = st["group_base"], st["hour_group"], st["weekday_group"]
    k_gb, k_gh, k_gw = st["k_gb"], st["k_gh"], st["k_gw"]
    k_open_resp, k_hour, k_weekday = st["k_open_resp"], st["k_hour"], st["k_weekday"]
    smoothing = {
        "hour_group": st["w_gh"],
        "hour_hcp": st["w_hour"],
    }

    params = EngagementParams(
        channels=list(channels),
        n_groups=G,
        ch_global=ch_global,
        ch_group=ch_group,
        k_ch_resp=k_ch_resp,
        k_ch=k_ch,
        open_base=open_base,
        hour_global=hour_global,
        weekday_global=weekday_global,
        group_base=group_base,
        hour_group=hour_group,
        weekday_group=weekday_group,
        k_open_resp=k_open_resp,
        k_hour=k_hour,
        k_weekday=k_weekday,
        sat_tau=sat_tau,
        sat_lam=sat_lam,
        min_per_week=s.min_per_week,
        max_per_week=s.max_per_week,
    )
    params.metrics = {
        "n_deliveries": int(d.n),
        "open_rate": round(float(y_o.mean()) if d.n else 0.0, 4),
        "engaged_rate": round(float(y_e.mean()) if d.n else 0.0, 4),
        "strengths": {
            "channel_group": k_g,
            "channel_responsiveness": k_ch_resp,
            "channel_hcp": k_ch,
            "channel_open_group": k_og,
            "channel_open_hcp": k_och,
            "open_group": k_gb,
            "hour_group": k_gh,
            "weekday_group": k_gw,
            "open_responsiveness": k_open_resp,
            "hour_hcp": k_hour,
            "weekday_hcp": k_weekday,
        },
        # mean_factor: the mean fatigue factor over the training deliveries; the send-time
        # model's expected opens carry each delivery's factor over it
        "saturation": {"tau": tau_all, "lam": lam_all, "mean_factor": mean_factor},
        # hours of the Gaussian smoothing of hour counts (0: the 1/4, 1/2, 1/4 kernel);
        # serving smooths each HCP's hours with "hour_hcp"
        "smoothing": smoothing,
        # opens by channel: each group's factors (row G: global) over the send-time model,
        # and the strength of the HCP's own
        "channel_open": {"group": np.round(ch_open, 6).tolist(), "k": k_och},
        # Channels nothing was delivered on: their rates are only the prior, so they are
        # left out of the segments' features and of the profiles' channel lists.
        "channels_seen": [bool(v > 0) for v in n_c],
    }
    state = hcp_state(params, d, group)
    segments = fit_segments(
        params, state, d, item_tags=item_tags, tag_names=tag_names, previous=previous, settings=s
    )
    return params, state, segments


# --- microsegments ------------------------------------------------------------------------


def _tag_lifts(
    d: Deliveries,
    state: HcpState,
    p: EngagementParams,
    item_tags: dict[str, np.ndarray],
    tag_names: dict[str, list[str]],
) -> tuple[list[str], list[np.ndarray]]:
    """Per HCP, the log of their shrunk engaged ratio per tag value (0: as expected)."""
    names: list[str] = []
    cols: list[np.ndarray] = []
    n = len(state.n_deliveries)
    known = (d.channel >= 0) & (d.item >= 0)
    expected = _channel_expected(p, d, state.group_row) * state.engage_resp[d.hcp]
    expected = expected * state.channel_ratio[d.hcp, np.where(d.channel >= 0, d.channel, 0)]
    y = d.engaged.astype(np.float64)
    for kind in ("message", "tonality", "format"):
        codes = item_tags.get(kind)
        values = tag_names.get(kind, [])
        if codes is None or not len(values):
            continue
        code = np.where(known, codes[np.where(known, d.item, 0)], -1)
        for v, value in enumerate(values):
            m = code == v
            if not m.any():
                continue
            o = np.bincount(d.hcp[m], weights=y[m], minlength=n)
            e = np.bincount(d.hcp[m], weights=expected[m], minlength=n)
            names.append(f"{kind}:{value}")
            cols.append(np.log(shrink(o, e, 4.0)))
    return names, cols


def segment_features(
    p: EngagementParams,
    state: HcpState,
    d: Deliveries,
    item_tags: dict[str, np.ndarray] | None = None,
    tag_names: dict[str, list[str]] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Each HCP's learned deviations from the average HCP, one named column each."""
    names: list[str] = []
    cols: list[np.ndarray] = []
    seen = seen_channels(p)
    used = state.channel[:, seen] if seen.any() else state.channel
    rel = state.channel / np.maximum(used.mean(axis=1, keepdims=True), P_MIN)
    for c, slug in enumerate(p.channels):
        if seen.any() and not seen[c]:
            continue
        names.append(f"channel:{slug}")
        cols.append(np.log(np.maximum(rel[:, c], P_MIN)))
    grid = state.slot_grid(p)  # (n, 7, 24)
    by_hour = grid.mean(axis=1)
    mean_hour = by_hour.mean(axis=1, keepdims=True)
    for name, lo, hi in DAYPARTS:
        names.append(f"daypart:{name}")
        cols.append(np.log(np.maximum(by_hour[:, lo:hi].mean(axis=1), P_MIN) / mean_hour[:, 0]))
    by_day = grid.mean(axis=2)
    names.append("weekend")
    cols.append(np.log(by_day[:, 5:].mean(axis=1) / np.maximum(by_day[:, :5].mean(axis=1), P_MIN)))
    names.append("responsiveness")
    cols.append(np.log(state.engage_resp * state.open_resp))
    if item_tags and tag_names:
        tag_cols_names, tag_cols = _tag_lifts(d, state, p, item_tags, tag_names)
        names += tag_cols_names
        cols += tag_cols
    return names, np.column_stack(cols) if cols else np.zeros((len(state.n_deliveries), 0))


_PHRASES = {
    "channel": ("prefers {v}", "avoids {v}"),
    "daypart": ("opens in the {v}", "rarely opens in the {v}"),
    "message": ("drawn to {v} messages", "cool on {v} messages"),
    "tonality": ("prefers a {v} tone", "dislikes a {v} tone"),
    "format": ("likes {v}", "skips {v}"),
}


def phrase(name: str, positive: bool) -> str:
    """A feature in words: ``channel:rep_email`` -> "prefers rep email"."""
    if name == "weekend":
        return "opens at weekends" if positive else "a weekday reader"
    if name == "responsiveness":
        return "highly responsive" if positive else "rarely engages"
    kind, _, value = name.partition(":")
    pos, neg = _PHRASES.get(kind, ("high {v}", "low {v}"))
    return (pos if positive else neg).format(v=value.replace("_", " ").replace("-", " "))


def fit_segments(
    p: EngagementParams,
    state: HcpState,
    d: Deliveries,
    *,
    item_tags: dict[str, np.ndarray] | None = None,
    tag_names: dict[str, list[str]] | None = None,
    previous: EngagementParams | None = None,
    settings: FitSettings | None = None,
) -> np.ndarray:
    """K-means microsegments of the HCPs; fills ``p``'s segment fields, answers each HCP's."""
    from sklearn.cluster import KMeans

    s = settings or FitSettings()
    names, X = segment_features(p, state, d, item_tags, tag_names)
    n = len(X)
    warm = state.n_deliveries > 0
    basis = X[warm] if warm.sum() >= 2 else X
    mean = basis.mean(axis=0) if len(basis) else np.zeros(X.shape[1])
    sd = basis.std(axis=0) if len(basis) else np.ones(X.shape[1])
    sd = np.where(sd > 1e-9, sd, 1.0)
    # Clipped at 3 sd: a handful of extreme HCPs would otherwise take clusters of their own.
    Z = np.clip((X - mean) / sd, -3.0, 3.0)
    k = int(min(s.n_segments, max(1, int(warm.sum()) // 20)))
    p.feature_names, p.feature_mean, p.feature_sd = names, mean, sd
    if n == 0 or k < 2:
        p.centroids = np.zeros((1, len(names)))
        p.segment_ids, p.segment_labels = ["ms-1"], ["everyone"]
        p.segment_features = [[]]
        return np.zeros(n, dtype=np.int64)
    sample = Z[warm] if warm.sum() >= k else Z
    if len(sample) > 20_000:
        sample = sample[np.random.default_rng(s.seed).choice(len(sample), 20_000, replace=False)]
    prev_ok = (
        previous is not None
        and previous.feature_names == names
        and len(previous.centroids) == k
        and previous.centroids.shape[1] == len(names)
    )
    if prev_ok and previous is not None:
        prev_z = (previous.centroids - mean) / sd  # stored in raw feature units
        km = KMeans(n_clusters=k, init=prev_z, n_init=1, random_state=s.seed).fit(sample)
    else:
        km = KMeans(n_clusters=k, n_init=4, random_state=s.seed).fit(sample)
    centroids_z = km.cluster_centers_
    assign = km.predict(Z)
    ids = [f"ms-{i + 1}" for i in range(k)]
    if previous is not None and len(previous.centroids) and previous.feature_names == names:
        ids = _stable_ids(centroids_z, previous, mean, sd)
    sizes = np.bincount(assign, minlength=k)
    labels, features = [], []
    for j in range(k):
        c = centroids_z[j]
        order = np.argsort(-np.abs(c))
        strongest = [
            {"feature": names[i], "z": round(float(c[i]), 2), "words": phrase(names[i], c[i] > 0)}
            for i in order[:5]
        ]
        words = [f["words"] for f in strongest if abs(f["z"]) >= 0.4][:2]
        labels.append(", ".join(words) if words else "typical of their group")
        features.append(strongest)
    # Centroids kept in raw feature units, so the next model can standardise its own way.
    p.centroids = centroids_z * sd + mean
    p.segment_ids, p.segment_labels, p.segment_features = ids, labels, features
    p.metrics["segments"] = {ids[j]: int(sizes[j]) for j in range(k)}
    return assign.astype(np.int64)


def _stable_ids(
    centroids_z: np.ndarray, previous: EngagementParams, mean: np.ndarray, sd: np.ndarray
) -> list[str]:
    """Each new centroid takes the id of the previous one it matches best (Hungarian
    assignment on distance); a centroid with no counterpart takes a fresh number."""
    from scipy.optimize import linear_sum_assignment

    prev_z = (previous.centroids - mean) / sd
    cost = ((centroids_z[:, None, :] - prev_z[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids: list[str | None] = [None] * len(centroids_z)
    for r, c in zip(rows, cols, strict=True):
        ids[r] = previous.segment_ids[c]
    used = {int(i.split("-")[1]) for i in previous.segment_ids if i.split("-")[-1].isdigit()}
    nxt = max(used, default=0) + 1
    out = []
    for i in ids:
        if i is None:
            i, nxt = f"ms-{nxt}", nxt + 1
        out.append(i)
    return out


# --- one HCP's profile --------------------------------------------------------------------


def drivers(
    p: EngagementParams, state: HcpState, row: int = 0, *, grid: np.ndarray | None = None
) -> list[str]:
    """What most sets this HCP apart, in words ("opens email early on weekdays").

    ``grid`` is the row's (7, 24) slot grid when the caller has it already.
    """
    out: list[str] = []
    if state.n_deliveries[row] == 0:
        return out
    ratio = state.channel_ratio[row]
    if len(ratio):
        c = int(np.argmax(ratio))
        if ratio[c] >= 1.15:
            out.append(f"engages most on {p.channels[c].replace('_', ' ')}")
    if grid is None:
        grid = state.slot_grid(p, np.array([row]))[0]
    by_hour = grid.mean(axis=0)
    by_day = grid.mean(axis=1)
    peak = int(np.argmax(by_hour))
    lift = by_hour[peak] / max(float(by_hour.mean()), P_MIN)
    if lift >= 1.15:
        part = next(name for name, lo, hi in DAYPARTS if lo <= peak < hi)
        when = "early " if part == "morning" and peak < 9 else ""
        ratio = by_day[:5].mean() / max(float(by_day[5:].mean()), P_MIN)
        days = " on weekdays" if ratio >= 1.1 else " at weekends" if ratio <= 1 / 1.1 else ""
        out.append(f"opens {when}in the {part}{days}")
    return out
