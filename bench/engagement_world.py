"""Synthetic worlds for the engagement benchmark: channel, send time and saturation truth.

Plain data and numpy (no Django), so any engagement model can be scored on
them. Each world extends an affinity world (``bench/worlds.py``: HCPs with a
specialty and a segment, modules, the true click probability of every (HCP,
module) pair) with what the engagement model learns, and knows the true open
probability of every (HCP, channel, local weekday, local hour, touches in the
7 days before) combination.

What every variant shares:

* **Time zones.** HCPs live in seven IANA zones (London, Berlin, New York,
  Chicago, Los Angeles, Tokyo, Sydney) independently of their group; only the
  *local* weekday and hour matter (DST-exact, ``affinity.localtime``), so a
  UTC-hour view of the log blurs every pattern.
* **Send-time taste** (log scale, multiplying the open rate): a common diurnal
  shape (a night trough, a little less at weekends); a group pattern per
  specialty x segment (a peak at one of several local hours with its own
  width and height, a weekend shift of that peak, a weekend and a weekday
  profile); and an individual part as strong as the group's: the HCP's own
  shift of the group peak, a second peak of their own at a random waking hour
  and their own weekend and weekday taste. Weekday and hour interact (the
  weekend shift), so no separable model is exactly right.
* **Channel taste** (email, rep_email, web): a global ranking, a group taste
  and an individual taste of about the same spread; half of it acts on the
  open rate, half (plus noise of its own) on the click-through given an open.
* **Saturation**: the open probability is multiplied by
  ``F(x) = exp(-lam max(0, x - tau))`` of the touches ``x`` in the 7 days
  before; ``tau`` and ``lam`` come from the segment with individual variation,
  so the truth's recommended touches per week is ``n* = max(tau + 1, 1 / lam)``
  per HCP (bounded to [0.5, 7] as the product's settings).
* **Send intensity varies**: each warm HCP is contacted inside an active
  window of their own (so between about 1.2 and 4 touches a week), up to half
  of it in bursts of several touches within 4-10 days: the touches in the 7
  days before a delivery range from 0 to over 10 (about 3.5 on average), so
  fatigue is identifiable.
* **Uniform logging**: channel, item and instant are drawn at random (the
  instants uniform over the log's weeks, hence over every UTC and local hour
  and weekday), so the log explores every slot and channel.
* **Responses**: an open follows the delivery after minutes to hours (median
  about 45 minutes), so the open event's own hour differs from the send hour;
  a click follows an open with the HCP x channel click-through times the
  module's factor from the affinity world's truth; half the clicks are followed
  by a read with a dwell time.
* **Cold HCPs**: ``cold_share`` of the HCPs (a quarter) have 0-2 deliveries.
* Open rates of about 20-35% and click rates of about 5-12% per delivery.

The variants (``VARIANTS``):

* ``base``: 30-60 deliveries per warm HCP, group and individual taste equally
  strong.
* ``sparse``: 15-30 deliveries per warm HCP at a lower click rate.
* ``individual``: a stress test, taste mostly individual: weaker group
  patterns, larger individual peak shifts and second peaks (the individual part
  of the send-time taste has about six times the group part's variance, against
  about 1.3 times in ``base``), channel taste mostly individual.

``generate(seed, variant=...)`` is deterministic for a (variant, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bench import worlds
from content_modules.affinity.localtime import local_slots

CHANNELS = ("email", "rep_email", "web")
ZONES = (
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
)
ZONE_SHARES = (0.24, 0.18, 0.16, 0.1, 0.12, 0.1, 0.1)
# Group peak hours (local) are drawn around these archetypes: early, lunch, late afternoon,
# evening.
PEAK_ARCHETYPES = (7.5, 12.5, 17.0, 20.5)
HOURS, WEEKDAYS = 24, 7
DAY, WEEK = 86400.0, 7 * 86400.0
OPEN_CAP = 0.95  # soft ceiling of a single open probability
MIN_PER_WEEK, MAX_PER_WEEK = 0.5, 7.0  # the product's default bounds of n*
STATES = ("undersaturated", "on_target", "saturated")
# Event codes as content_modules.affinity.learning.features.EVENT_CODES.
EVENT_DELIVERED, EVENT_OPENED, EVENT_CLICKED, EVENT_READ = 0, 1, 2, 3


@dataclass(frozen=True)
class Variant:
    """The structural knobs of one kind of engagement world."""

    name: str
    affinity: str = "mixed"  # the bench/worlds.py variant the HCPs and modules come from
    n_hcps: int = 3000
    n_modules: int = 120
    deliveries: tuple[int, int] = (30, 60)  # per warm HCP
    cold_share: float = 0.25
    weeks: float = 24.0
    open_rate: float = 0.27  # mean true open probability over the logged deliveries
    click_rate: float = 0.08  # mean true click probability per delivery
    responsiveness_sd: float = 0.4  # the HCP's overall open level (log)
    # send time (log scale)
    diurnal: float = 0.8  # depth of the common night trough
    group_amp: float = 0.6  # height of a group's peak
    shift_sd: float = 2.0  # hours: the HCP's own shift of the group peak
    indiv_amp: float = 0.6  # height of the HCP's own second peak
    weekend_group_sd: float = 0.3
    weekend_indiv_sd: float = 0.3
    weekday_sd: float = 0.08  # per weekday, group and individual each
    # channel (log scale)
    channel_global: tuple[float, ...] = (0.0, 0.15, -0.1)  # email, rep_email, web
    channel_group_sd: float = 0.4
    channel_indiv_sd: float = 0.4
    click_noise_sd: float = 0.2  # click-through taste of its own per HCP x channel
    # saturation, per segment (digital-first, traditional, key-opinion-leader)
    tau: tuple[float, ...] = (2.5, 1.0, 2.0)
    lam: tuple[float, ...] = (0.25, 0.4, 0.2)
    tau_sd: float = 0.8
    lam_sd: float = 0.35  # log scale
    burst_share: tuple[float, float] = (0.0, 0.5)  # of a warm HCP's deliveries


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("base"),
        Variant("sparse", affinity="sparse", deliveries=(15, 30), click_rate=0.06),
        Variant(
            "individual",
            group_amp=0.4,
            shift_sd=3.5,
            indiv_amp=0.75,
            weekend_group_sd=0.2,
            weekend_indiv_sd=0.4,
            channel_group_sd=0.25,
            channel_indiv_sd=0.55,
        ),
    )
}


def _circular(h: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Signed distance in hours from ``peak`` to ``h`` on the 24-hour circle."""
    return (h - peak + 12.0) % 24.0 - 12.0


def _bump(h: np.ndarray, peak: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    return np.exp(-0.5 * (_circular(h, peak) / width) ** 2)


def _soft_cap(rate: np.ndarray) -> np.ndarray:
    """Nearly the rate when small, never above ``OPEN_CAP``."""
    return OPEN_CAP * (1.0 - np.exp(-np.asarray(rate) / OPEN_CAP))


def saturation_state(touches: np.ndarray, n_star: np.ndarray) -> np.ndarray:
    """The product's rule (``learning.saturation_state``), vectorised: a code into STATES."""
    touches = np.asarray(touches, dtype=np.float64)
    out = np.zeros(len(touches), dtype=np.int8)
    out[touches > n_star - 1] = 1
    out[touches > n_star] = 2
    return out


@dataclass
class EngagementWorld:
    """One world: the affinity world it extends, the engagement truth and the raw event log."""

    variant: Variant
    seed: int
    base: worlds.FamilyWorld  # HCPs' specialty/segment/cold, modules, true click affinity
    zone: np.ndarray  # (n,) IANA zone name per HCP (object)
    # the truth, per HCP
    open_level: np.ndarray  # (n,) log open rate of an average slot and channel, before the cap
    time_log: np.ndarray  # (n, 7, 24) log send-time factor by local weekday and hour
    channel_open: np.ndarray  # (n, C) log open factor per channel
    click_through: np.ndarray  # (n, C) click probability given an open, for an average module
    item_factor: np.ndarray  # (n, M) a module's click factor for the HCP (mean 1 per HCP)
    tau: np.ndarray  # (n,)
    lam: np.ndarray  # (n,)
    # the parts of the log send-time factor, so tests can check the structure (time_log is
    # their sum less each HCP's mean, which open_level carries)
    time_parts: dict[str, np.ndarray] = field(repr=False)
    # the raw log: one row per event, sorted by time (EVENT_* codes)
    events: dict[str, np.ndarray] = field(repr=False)
    t0: float = 1.7e9
    now: float = 0.0  # the evaluation instant: the end of the log
    touches_now: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    deliveries_per_hcp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    channels: tuple[str, ...] = CHANNELS

    @property
    def n_hcps(self) -> int:
        return len(self.zone)

    @property
    def specialty(self) -> np.ndarray:
        return self.base.specialty

    @property
    def segment(self) -> np.ndarray:
        return self.base.segment

    @property
    def cold(self) -> np.ndarray:
        """HCPs with 0-2 deliveries (a quarter by default)."""
        return self.base.cold

    @property
    def group(self) -> np.ndarray:
        """Specialty x segment code (0..n_groups-1)."""
        return self.base.group

    @property
    def n_groups(self) -> int:
        return len(worlds.SPECIALTIES) * len(worlds.SEGMENTS)

    # -- the truth ------------------------------------------------------------------------

    def saturation_factor(self, rows: np.ndarray, touches: np.ndarray) -> np.ndarray:
        x = np.asarray(touches, dtype=np.float64)
        return np.exp(-self.lam[rows] * np.maximum(0.0, x - self.tau[rows]))

    def open_prob(
        self,
        rows: np.ndarray,
        channel: np.ndarray | int,
        weekday: np.ndarray | int,
        hour: np.ndarray | int,
        touches_7d: np.ndarray | int = 0,
    ) -> np.ndarray:
        """True probability that a delivery is opened (arguments broadcast together)."""
        rows, channel, weekday, hour, touches = np.broadcast_arrays(
            np.asarray(rows),
            np.asarray(channel),
            np.asarray(weekday),
            np.asarray(hour),
            np.asarray(touches_7d),
        )
        rate = np.exp(
            self.open_level[rows]
            + self.channel_open[rows, channel]
            + self.time_log[rows, weekday, hour]
        )
        return _soft_cap(rate) * self.saturation_factor(rows, touches)

    def click_prob(self, rows: np.ndarray, channel: np.ndarray, item: np.ndarray) -> np.ndarray:
        """True probability of a click given an open, for that module."""
        return np.minimum(0.95, self.click_through[rows, channel] * self.item_factor[rows, item])

    def engaged_prob(
        self,
        rows: np.ndarray,
        channel: np.ndarray | int,
        weekday: np.ndarray | int,
        hour: np.ndarray | int,
        touches_7d: np.ndarray | int = 0,
    ) -> np.ndarray:
        """True probability of a click (the engaged response) for an average module."""
        rows_b, channel_b = np.broadcast_arrays(np.asarray(rows), np.asarray(channel))
        return self.open_prob(rows, channel, weekday, hour, touches_7d) * self._mean_click(
            rows_b, channel_b
        )

    def _mean_click(self, rows: np.ndarray, channel: np.ndarray) -> np.ndarray:
        deliverable = ~self.base.module_array("new")
        out = np.zeros(rows.shape)
        for c in range(len(self.channels)):
            m = channel == c
            if m.any():
                p = np.minimum(
                    0.95,
                    self.click_through[rows[m], c][:, None]
                    * self.item_factor[rows[m]][:, deliverable],
                )
                out[m] = p.mean(axis=1)
        return out

    def open_grid(self, rows: np.ndarray, touches_7d: int = 0) -> np.ndarray:
        """(n, 7, 24) true open probability per local slot, averaged over the channels."""
        rows = np.asarray(rows)
        w = np.arange(WEEKDAYS)[None, :, None]
        h = np.arange(HOURS)[None, None, :]
        r = rows[:, None, None]
        return np.mean(
            [self.open_prob(r, c, w, h, touches_7d) for c in range(len(self.channels))], axis=0
        )

    def channel_engagement(self, rows: np.ndarray) -> np.ndarray:
        """(n, C) true engaged probability per channel, at a uniformly random slot, rested."""
        rows = np.asarray(rows)
        w = np.arange(WEEKDAYS)[None, :, None]
        h = np.arange(HOURS)[None, None, :]
        out = np.zeros((len(rows), len(self.channels)))
        for c in range(len(self.channels)):
            opens = self.open_prob(rows[:, None, None], c, w, h, 0).mean(axis=(1, 2))
            out[:, c] = opens * self._mean_click(rows, np.full(len(rows), c))
        return out

    def best_channel(self, rows: np.ndarray) -> np.ndarray:
        return np.argmax(self.channel_engagement(rows), axis=1)

    def n_star(self, rows: np.ndarray) -> np.ndarray:
        """True recommended touches per week: argmax of n F(n - 1), bounded as the product."""
        rows = np.asarray(rows)
        n = np.maximum(self.tau[rows] + 1.0, 1.0 / self.lam[rows])
        return np.clip(n, MIN_PER_WEEK, MAX_PER_WEEK)

    def true_state(self, rows: np.ndarray) -> np.ndarray:
        """Code into STATES of each HCP's touches in the last 7 days against their true n*."""
        rows = np.asarray(rows)
        return saturation_state(self.touches_now[rows], self.n_star(rows))


def _touches_before(hcp: np.ndarray, t: np.ndarray, span: float = WEEK) -> np.ndarray:
    """Per delivery: the same HCP's deliveries in the ``span`` seconds before it."""
    order = np.lexsort((t, hcp))
    sh, st = hcp[order], t[order]
    out = np.zeros(len(t), dtype=np.int64)
    bounds = np.r_[np.flatnonzero(np.r_[True, sh[1:] != sh[:-1]]), len(sh)] if len(sh) else []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        times = st[a:b]
        out[order[a:b]] = np.arange(b - a) - np.searchsorted(times, times - span, side="left")
    return out


def _delivery_times(rng: np.random.Generator, v: Variant, n: int, span: float) -> np.ndarray:
    """One warm HCP's delivery instants (seconds from the log's start), wrapped into the span.

    An active window of the HCP's own (at least n/6 weeks, at most the whole log)
    holds a uniform background; a share of the deliveries comes in 1-3 bursts of
    4-10 days. Window and bursts start uniformly, so over HCPs the instants are
    uniform over the span (and over every hour and weekday).
    """
    weeks = span / WEEK
    length = rng.uniform(min(max(n / 4.0, 3.0), weeks), weeks) * WEEK
    start = rng.uniform(0, span)
    share = rng.uniform(*v.burst_share)
    n_burst = int(round(share * n))
    n_bursts = int(rng.integers(1, 4)) if n_burst >= 3 else 0
    if not n_bursts:
        n_burst = 0
    times = [start + rng.uniform(0, length, n - n_burst)]
    if n_bursts:
        sizes = np.bincount(rng.integers(0, n_bursts, n_burst), minlength=n_bursts)
        for size in sizes:
            burst_start = start + rng.uniform(0, length)
            times.append(burst_start + rng.uniform(0, rng.uniform(4, 10) * DAY, size))
    return np.sort(np.concatenate(times) % span)


def _calibrate_log(values: np.ndarray, target: float, transform) -> float:
    """The offset ``o`` with mean(transform(values + o)) == target (bisection)."""
    lo, hi = -10.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if transform(values + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate(seed: int, variant: str | Variant = "base", **overrides) -> EngagementWorld:
    """One engagement world, deterministic for (variant, seed)."""
    v = VARIANTS[variant] if isinstance(variant, str) else variant
    if overrides:
        v = replace(v, **overrides)
    base = worlds.generate(
        v.affinity, seed, n_hcps=v.n_hcps, n_modules=v.n_modules, cold_share=v.cold_share
    )
    rng = np.random.default_rng([seed, 7919, sum(map(ord, v.name))])
    N, C = v.n_hcps, len(CHANNELS)
    G = len(worlds.SPECIALTIES) * len(worlds.SEGMENTS)
    group, segment = base.group, base.segment
    zone = np.array(ZONES, dtype=object)[rng.choice(len(ZONES), N, p=ZONE_SHARES)]
    hours = np.arange(HOURS, dtype=np.float64)
    weekend = np.array([0, 0, 0, 0, 0, 1, 1], dtype=np.float64)

    # --- send-time taste (log factors by local weekday x hour) -------------------------
    common = -v.diurnal * _bump(hours, 3.5, 2.5)[None, :] - 0.15 * weekend[:, None]
    g_peak = rng.choice(PEAK_ARCHETYPES, G) + rng.uniform(-1.0, 1.0, G)
    g_width = rng.uniform(2.0, 3.5, G)
    g_amp = v.group_amp * rng.uniform(0.7, 1.3, G)
    g_weekend_shift = rng.uniform(0.0, 3.0, G)
    g_days = (
        rng.normal(0, v.weekday_sd, (G, WEEKDAYS))
        + rng.normal(0, v.weekend_group_sd, G)[:, None] * weekend[None, :]
    )
    i_shift = rng.normal(0, v.shift_sd, N)
    i_peak2 = rng.uniform(6.0, 23.0, N)
    i_amp2 = v.indiv_amp * rng.uniform(0.5, 1.2, N)
    i_days = (
        rng.normal(0, v.weekday_sd, (N, WEEKDAYS))
        + rng.normal(0, v.weekend_indiv_sd, N)[:, None] * weekend[None, :]
    )
    # The group's own peak (no individual shift), and the HCP's shifted one.
    peak_by_day = g_peak[:, None] + g_weekend_shift[:, None] * weekend[None, :]  # (G, 7)
    group_part = (
        g_amp[:, None, None]
        * _bump(hours[None, None, :], peak_by_day[:, :, None], g_width[:, None, None])
        + g_days[:, :, None]
    )[group]
    own_peak = peak_by_day[group] + i_shift[:, None]  # (N, 7)
    shifted = (
        g_amp[group][:, None, None]
        * _bump(hours[None, None, :], own_peak[:, :, None], g_width[group][:, None, None])
        + g_days[group][:, :, None]
    )
    individual_part = (
        shifted
        - group_part
        + i_amp2[:, None, None] * _bump(hours[None, None, :], i_peak2[:, None, None], 2.0)
        + i_days[:, :, None]
    )
    time_log = common[None, :, :] + group_part + individual_part
    time_log = time_log - time_log.mean(axis=(1, 2), keepdims=True)  # level in open_level

    # --- channel taste -------------------------------------------------------------------
    u = (
        np.asarray(v.channel_global)[None, :]
        + rng.normal(0, v.channel_group_sd, (G, C))[group]
        + rng.normal(0, v.channel_indiv_sd, (N, C))
    )
    channel_open = 0.5 * u
    click_log = 0.5 * u + rng.normal(0, v.click_noise_sd, (N, C)) + rng.normal(0, 0.3, N)[:, None]

    # --- saturation ------------------------------------------------------------------------
    tau = np.clip(np.asarray(v.tau)[segment] + rng.normal(0, v.tau_sd, N), 0.0, 8.0)
    lam = np.asarray(v.lam)[segment] * np.exp(rng.normal(0, v.lam_sd, N))

    # --- the log: who, when, which channel and module -----------------------------------
    cold = base.cold
    span = v.weeks * WEEK
    t0 = 1.7e9
    n_del = np.where(
        cold,
        rng.integers(0, 3, N),
        rng.integers(v.deliveries[0], v.deliveries[1] + 1, N),
    )
    hcp = np.repeat(np.arange(N), n_del)
    when = np.concatenate(
        [
            _delivery_times(rng, v, int(n), span)
            if not cold[i]
            else np.sort(rng.uniform(0, span, int(n)))
            for i, n in enumerate(n_del)
        ]
        or [np.zeros(0)]
    )
    t = t0 + when
    channel = rng.integers(0, C, len(hcp))
    deliverable = np.flatnonzero(~base.module_array("new"))
    item = deliverable[rng.integers(0, len(deliverable), len(hcp))]
    weekday = np.zeros(len(hcp), np.int64)
    hour = np.zeros(len(hcp), np.int64)
    for z in ZONES:
        m = zone[hcp] == z
        if m.any():
            wd, hr = local_slots(t[m], z)
            weekday[m], hour[m] = wd, hr
    touches = _touches_before(hcp, t)

    # --- calibrate the levels to the target open and click rates -------------------------
    responsiveness = rng.normal(0, v.responsiveness_sd, N)
    sat = np.exp(-lam[hcp] * np.maximum(0.0, touches - tau[hcp]))
    partial = responsiveness[hcp] + channel_open[hcp, channel] + time_log[hcp, weekday, hour]
    offset = _calibrate_log(partial, v.open_rate, lambda x: _soft_cap(np.exp(x)) * sat)
    open_level = responsiveness + offset
    aff = base.truth
    item_factor = aff / aff[:, deliverable].mean(axis=1, keepdims=True)
    p_open = _soft_cap(np.exp(open_level[hcp] + partial - responsiveness[hcp])) * sat
    click_x = click_log[hcp, channel] + np.log(item_factor[hcp, item])
    c_off = _calibrate_log(click_x, v.click_rate, lambda x: p_open * np.minimum(0.95, np.exp(x)))
    click_through = np.exp(click_log + c_off)

    # --- responses -------------------------------------------------------------------------
    opened = rng.random(len(hcp)) < p_open
    p_click = np.minimum(0.95, click_through[hcp, channel] * item_factor[hcp, item])
    clicked = opened & (rng.random(len(hcp)) < p_click)
    read = clicked & (rng.random(len(hcp)) < 0.5)
    open_delay = np.minimum(np.exp(rng.normal(np.log(45 * 60.0), 1.2, len(hcp))), 2 * DAY)
    click_delay = open_delay + rng.exponential(120.0, len(hcp)) + 5.0
    read_delay = click_delay + rng.uniform(5.0, 60.0, len(hcp))
    dwell = rng.uniform(5.0, 180.0, len(hcp))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("hcp", "t", "type", "channel", "item")}
    cols["dwell"] = []
    for mask, kind, delay in (
        (np.ones(len(hcp), bool), EVENT_DELIVERED, np.zeros(len(hcp))),
        (opened, EVENT_OPENED, open_delay),
        (clicked, EVENT_CLICKED, click_delay),
        (read, EVENT_READ, read_delay),
    ):
        cols["hcp"].append(hcp[mask])
        cols["t"].append(t[mask] + delay[mask])
        cols["type"].append(np.full(int(mask.sum()), kind, dtype=np.int8))
        cols["channel"].append(channel[mask].astype(np.int16))
        cols["item"].append(item[mask])
        cols["dwell"].append(dwell[mask] if kind == EVENT_READ else np.zeros(int(mask.sum())))
    events = {k: np.concatenate(a) for k, a in cols.items()}
    order = np.argsort(events["t"], kind="stable")
    events = {k: a[order] for k, a in events.items()}

    now = t0 + span
    recent = t >= now - WEEK
    touches_now = np.bincount(hcp[recent], minlength=N)
    return EngagementWorld(
        variant=v,
        seed=seed,
        base=base,
        zone=zone,
        open_level=open_level,
        time_log=time_log,
        channel_open=channel_open,
        click_through=click_through,
        item_factor=item_factor,
        tau=tau,
        lam=lam,
        time_parts={
            "common": np.broadcast_to(common, (N, WEEKDAYS, HOURS)),
            "group": group_part,
            "individual": individual_part,
        },
        events=events,
        t0=t0,
        now=now,
        touches_now=touches_now,
        deliveries_per_hcp=n_del,
    )


def family(seeds: int = 5, variants: tuple[str, ...] | None = None, **overrides):
    """Yield every (variant, seed) world."""
    for name in variants or tuple(VARIANTS):
        for seed in range(seeds):
            yield generate(seed, name, **overrides)
