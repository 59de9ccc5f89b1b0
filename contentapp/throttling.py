"""The per-token API throttle (ENGINE_THROTTLE_RATE), counted in the cache.

A module of its own importing no DRF views or models: DRF resolves its
throttle setting while defining ``APIView`` (see contentapp/parsers.py).

Every request made with an API token (the engine's service account above
all) counts against its token, in fixed windows of the rate's period: one
``incr`` in Redis per request. Past the rate the answer is 429 with
``Retry-After`` and ``RateLimit-Limit``/``-Remaining``/``-Reset``. Session
requests (people in the browser) are not counted here. While Redis is down
the cache answers misses and the throttle lets requests through: serving
the engine matters more than counting it. Without Redis (development) each
process counts on its own.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"6000/min"`` as (6000, 60)."""
    number, period = rate.split("/")
    return int(number), _SECONDS[period.strip()[0]]


class TokenRateThrottle(BaseThrottle):
    """At most ENGINE_THROTTLE_RATE requests per API token (empty setting: no limit)."""

    def allow_request(self, request, view) -> bool:
        rate = settings.ENGINE_THROTTLE_RATE
        token_id = getattr(request.auth, "pk", None)
        if not rate or token_id is None:
            return True
        number, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"throttle:token:{token_id}:{window}"
        try:
            count = cache.incr(key)
        except ValueError:  # the window's first request (or Redis is down)
            count = 1 if cache.add(key, 1, period + 1) else _incr_or_one(key)
        reset = max(1, math.ceil((window + 1) * period - now))
        self._wait = reset
        request.rate_limit = (number, max(0, number - count), reset)
        return count <= number

    def wait(self) -> float:
        return self._wait


def _incr_or_one(key: str) -> int:
    try:
        return cache.incr(key)
    except ValueError:
        return 1
