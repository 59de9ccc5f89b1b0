"""HCP time zones: which IANA zone an HCP lives in, and UTC instants as local slots.

Events keep UTC. Every local-time feature (send-time affinity, "opens email early
on weekdays") converts with the HCP's own zone, so a delivery at 08:00 UTC is
08:00 in London in winter and 09:00 in summer. The zone is the profile's
``timezone`` when given; else the market's (``settings.MARKET_TIMEZONES``, the
market read from the region's prefix, "UK-London" -> "UK"); else
``settings.DEFAULT_HCP_TIMEZONE``.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime

import numpy as np
from django.conf import settings

from content_modules.affinity.learning.features import unique_inverse

# Every offset change in the tz database falls on a quarter hour of UTC, so one
# offset per 15-minute bucket converts a whole history exactly, DST included.
_BUCKET_SECONDS = 900


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: object) -> bool:
    """True when name is an IANA zone name this machine's tz database knows."""
    return isinstance(name, str) and name in _zone_names()


def market_of_region(region: str) -> str:
    """The market code a region names by its prefix: "UK-London" -> "UK"."""
    return (region or "").split("-", 1)[0].strip().upper()


def zone_name(*, timezone: str = "", region: str = "", market: str = "") -> str:
    """The zone an HCP's local times are read in (see the module docstring)."""
    if timezone and valid_timezone(timezone):
        return timezone
    zones = {code.upper(): name for code, name in settings.MARKET_TIMEZONES.items()}
    for code in (market.upper() if market else "", market_of_region(region)):
        if code and code in zones:
            return zones[code]
    return settings.DEFAULT_HCP_TIMEZONE


def hcp_zone_name(hcp) -> str:
    """The zone of one HCP row (anything with ``timezone`` and ``region``)."""
    return zone_name(timezone=getattr(hcp, "timezone", ""), region=hcp.region)


@functools.lru_cache(maxsize=1 << 18)
def _offset_seconds(bucket: int, name: str) -> int:
    """The UTC offset in zone ``name`` during one 15-minute bucket of UTC.

    Cached: the buckets of the hours ahead recur in every next-best-action
    request, and an HCP's history is read again with each of its requests.
    """
    when = datetime.fromtimestamp(bucket * _BUCKET_SECONDS, UTC).astimezone(zoneinfo.ZoneInfo(name))
    offset = when.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def local_slots(epoch_seconds: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(weekday, hour) in zone ``name`` of UTC instants given as Unix seconds.

    Weekday 0 is Monday, as ``datetime.weekday``. Vectorised: the UTC offset is
    looked up once per distinct 15-minute bucket, not once per instant.
    """
    t = np.asarray(epoch_seconds, dtype=np.int64)
    if t.size == 0:
        empty = np.zeros(0, dtype=np.int8)
        return empty, empty
    buckets, inverse = unique_inverse(t // _BUCKET_SECONDS)
    offsets = np.fromiter(
        (_offset_seconds(b, name) for b in buckets.tolist()),
        dtype=np.int64,
        count=len(buckets),
    )
    local = t + offsets[inverse].reshape(t.shape)
    days = local // 86_400
    hour = (local % 86_400) // 3600
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    return weekday.astype(np.int8), hour.astype(np.int8)


@functools.lru_cache(maxsize=4096)
def _hourly(start: int, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    weekday, hour = local_slots(start + 3600 * np.arange(n, dtype=np.int64), name)
    weekday.setflags(write=False)
    hour.setflags(write=False)
    return weekday, hour


def hourly_slots(start: float, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``local_slots`` of the ``n`` whole hours from ``start`` (a whole hour), read-only.

    Cached: every next-best-action request of the same hour in one zone asks for the
    same hours ahead (0.2 ms each time otherwise).
    """
    return _hourly(int(start), int(n), name)


def local_datetime(when: datetime, name: str) -> datetime:
    """One aware instant in zone ``name``."""
    return when.astimezone(zoneinfo.ZoneInfo(name))
