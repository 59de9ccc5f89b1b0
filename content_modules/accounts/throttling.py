"""Rate limits kept in the database, so they hold while Redis (the cache) is down.

A throttle in the cache fails open when the cache does (contentapp/cache.py
answers misses): every request would look like the first. Sign-in attempts
are few and each costs a password hash anyway, so one insert and one count
in PostgreSQL per attempt is cheap; the window slides (one row per request).
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from .clients import client_ip
from .models import ThrottleHit

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/min"`` as (10, 60)."""
    num, period = rate.split("/")
    return int(num), DURATIONS[period.strip()[0]]


def throttle_wait(*, scope: str, ident: str, rate: str) -> float | None:
    """Count one request; None when allowed, else the seconds to wait.

    The hit is committed before the count, so of any number of parallel
    requests the k-th to commit counts at least k hits: no more than the
    allowed number ever pass. A refused request takes its hit back, so a
    client that keeps knocking is let in again once its window has moved on.
    """
    num, duration = parse_rate(rate)
    now = time.time()
    ident = ident[:64]
    hit = ThrottleHit.objects.create(scope=scope, ident=ident, at=now)
    window = ThrottleHit.objects.filter(scope=scope, ident=ident, at__gt=now - duration)
    if window.count() <= num:
        return None
    hit.delete()
    oldest = window.order_by("at").values_list("at", flat=True).first() or now
    return max(1.0, oldest + duration - now)


def login_throttle_wait(request) -> float | None:
    """The sign-in throttle (login page, admin login, token endpoint) for this client."""
    return throttle_wait(
        scope="login", ident=client_ip(request) or "unknown", rate=settings.LOGIN_THROTTLE_RATE
    )


class LoginRateThrottle(BaseThrottle):
    """DRF throttle for the token endpoint: the sign-in throttle, per client address."""

    def allow_request(self, request, view):
        self._wait = login_throttle_wait(request)
        if self._wait is not None:
            # The 429's RateLimit-* headers (contentapp.api).
            number, _ = parse_rate(settings.LOGIN_THROTTLE_RATE)
            request.rate_limit = (number, 0, math.ceil(self._wait))
        return self._wait is None

    def wait(self):
        return self._wait
