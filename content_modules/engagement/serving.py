"""The engagement model at request time: one HCP's channel, timing and saturation.

The active model's parameters are read once per process and kept while its
id stays the active one. One HCP's estimates come from ``learning.hcp_state``
over a batch of one: the same code the fit ran over every HCP, fed with the
HCP's events as they are now (an event that arrived after the fit counts).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from content_modules.affinity import localtime
from content_modules.affinity.learning.features import EVENT_CODES
from content_modules.library.models import Channel

from . import learning
from .models import EngagementModel, Microsegment

_lock = threading.Lock()
_cache: dict = {"id": None, "params": None, "version": None, "segments": {}}
_default: dict = {"channels": None, "params": None}


def reset_cache() -> None:
    with _lock:
        _cache.update(id=None, params=None, version=None, segments={})
        _default.update(channels=None, params=None)


def active_id() -> uuid.UUID | None:
    return EngagementModel.objects.filter(is_active=True).values_list("id", flat=True).first()


def _fallback() -> learning.EngagementParams:
    channels = list(Channel.objects.order_by("slug").values_list("slug", flat=True))
    with _lock:
        if _default["channels"] != channels:
            per_week = max(1.0, 7.0 / max(settings.DELIVERY_FREQUENCY_CAP_DAYS, 1))
            _default.update(channels=channels, params=learning.default_params(channels, per_week))
        return _default["params"]


def model(head_id: uuid.UUID | None | str = "read") -> tuple[learning.EngagementParams, str | None]:
    """The active parameters and their version; without a fit, the flat default (None).

    ``head_id`` is the active model's id when the caller has just read it.
    """
    if isinstance(head_id, str):
        head_id = active_id()
    if head_id is None:
        return _fallback(), None
    with _lock:
        if _cache["id"] == head_id:
            return _cache["params"], _cache["version"]
    row = EngagementModel.objects.filter(pk=head_id).values_list("artifact", "model_version")
    found = row.first()
    if found is None:
        return _fallback(), None
    params = learning.EngagementParams.from_bytes(bytes(found[0]))
    segments = {
        s.key: s.label for s in Microsegment.objects.filter(model_id=head_id).only("key", "label")
    }
    with _lock:
        _cache.update(id=head_id, params=params, version=found[1], segments=segments)
    return params, found[1]


def segment_label(key: str) -> str | None:
    with _lock:
        return _cache["segments"].get(key)


def group_code(params: learning.EngagementParams, specialty: str, segment: str) -> int:
    name = f"{specialty}|{segment}"
    try:
        return params.group_names.index(name)
    except ValueError:
        return -1


def _type_codes(types: np.ndarray) -> np.ndarray:
    if types.dtype == object:
        return np.fromiter(
            (EVENT_CODES.get(str(t), -1) for t in types), dtype=np.int8, count=len(types)
        )
    return types.astype(np.int8)


@dataclass
class OneHcp:
    """One HCP's estimates and the deliveries they came from."""

    params: learning.EngagementParams
    model_version: str | None
    state: learning.HcpState
    deliveries: learning.Deliveries
    zone: str
    group: int
    _grid: np.ndarray | None = None

    @property
    def from_group(self) -> bool:
        return int(self.state.n_deliveries[0]) == 0

    def grid(self) -> np.ndarray:
        """(7, 24) open probability by local weekday and hour (computed once)."""
        if self._grid is None:
            self._grid = self.state.slot_grid(self.params, np.array([0]))[0]
        return self._grid

    def touches(self, now: float, days: float) -> int:
        return int(
            np.sum((self.deliveries.t >= now - days * learning.DAY) & (self.deliveries.t < now))
        )

    def recommended_per_week(self) -> float:
        return float(self.params.recommended_per_week(np.array([self.group]))[0])

    def frequency(self, now: float) -> dict:
        per_week = self.recommended_per_week()
        last7 = self.touches(now, 7)
        return {
            "touches_last_7_days": last7,
            "touches_last_28_days": self.touches(now, 28),
            "state": learning.saturation_state(last7, per_week),
            "recommended_per_week": round(per_week, 1),
        }

    def channel_scores(self) -> dict[str, float]:
        """Engaged probability per channel the model saw deliveries on."""
        seen = learning.seen_channels(self.params)
        return {
            slug: round(float(self.state.channel[0, c]), 4)
            for c, slug in enumerate(self.params.channels)
            if seen[c]
        }


def one_hcp(
    *,
    specialty: str,
    segment: str,
    zone: str,
    events: dict,
    head_id: uuid.UUID | None | str = "read",
) -> OneHcp:
    """The HCP's estimates from its events (``t``, ``type``, ``version``, ``dwell``, and
    ``channel_slug``), read in ``zone``."""
    params, version = model(head_id)
    channel_index = {slug: i for i, slug in enumerate(params.channels)}
    slugs = events["channel_slug"]
    channel = np.fromiter(
        (channel_index.get(str(s), -1) for s in slugs), dtype=np.int16, count=len(slugs)
    )
    n = len(events["t"])
    d = learning.join_deliveries(
        np.zeros(n, np.int64),
        events["t"],
        _type_codes(events["type"]),
        channel,
        np.asarray(events["version"], dtype=np.int64),
        events.get("dwell"),
    )
    d = learning.localise(d, [zone], localtime.local_slots)
    group = group_code(params, specialty, segment)
    state = learning.hcp_state(params, d, np.array([group]))
    return OneHcp(params, version, state, d, zone, group)


def profile(hcp, events: dict, *, now: float | None = None, head_id="read") -> dict:
    """The engagement profile of one stored HCP, as ``GET .../engagement-profile`` answers."""
    return describe(hcp_estimate(hcp, events, head_id=head_id), hcp, events, now=now)


def hcp_estimate(hcp, events: dict, *, head_id="read") -> OneHcp:
    """``one_hcp`` for a stored HCP, read in its own zone."""
    zone = localtime.hcp_zone_name(hcp)
    return one_hcp(
        specialty=hcp.specialty, segment=hcp.segment, zone=zone, events=events, head_id=head_id
    )


def describe(one: OneHcp, hcp, events: dict, *, now: float | None = None) -> dict:
    """The engagement profile from an estimate already made (the HCP page also draws it)."""
    now = time.time() if now is None else now
    zone = one.zone
    grid = one.grid()
    segment = None
    if hcp.microsegment:
        label = segment_label(hcp.microsegment)
        if label is not None:
            segment = {"id": hcp.microsegment, "label": label}
    return {
        "hcp": hcp.external_id,
        "model_version": one.model_version,
        "n_events": int(len(events["t"])),
        "n_deliveries": int(one.state.n_deliveries[0]),
        "from_group": one.from_group,
        "channels": one.channel_scores(),
        "send_time": {
            "timezone": zone,
            "by_hour": [round(float(v), 4) for v in grid.mean(axis=0)],
            "by_weekday": [round(float(v), 4) for v in grid.mean(axis=1)],
            "best": [
                {"weekday": w, "hour": h, "score": round(s, 4)}
                for w, h, s in learning.best_slots(grid, 3)
            ],
        },
        "frequency": one.frequency(now),
        "microsegment": segment,
        "drivers": learning.drivers(one.params, one.state, 0, grid=grid),
    }
