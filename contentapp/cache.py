"""A Redis cache that degrades to misses while Redis is unreachable.

The cache only ever holds what can be recomputed (throttle counters, locks,
rendered fragments), so a stopped Redis must cost a miss, never a 500: every
operation that fails with a Redis connection or timeout error is logged and
answers what an empty cache would (``get`` the default, ``add``/``set``
False, ``incr`` a ValueError as for a missing key). Connect and socket
timeouts are short (settings), so a dead Redis costs milliseconds.
"""

from __future__ import annotations

import functools
import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_WARN_EVERY_SECONDS = 30.0
_last_warning = [0.0]


def _tolerant(default_factory):
    def wrap(method):
        @functools.wraps(method)
        def inner(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except _ERRORS:
                now = time.monotonic()
                if now - _last_warning[0] > _WARN_EVERY_SECONDS:
                    _last_warning[0] = now
                    logger.warning("cache unavailable (Redis down?); answering a miss")
                return default_factory(*args, **kwargs)

        return inner

    return wrap


def _get_default(key, default=None, version=None):
    return default


class TolerantRedisCache(RedisCache):
    """Django's Redis cache, answering misses instead of raising while Redis is down."""

    get = _tolerant(_get_default)(RedisCache.get)
    add = _tolerant(lambda *a, **k: False)(RedisCache.add)
    set = _tolerant(lambda *a, **k: False)(RedisCache.set)
    touch = _tolerant(lambda *a, **k: False)(RedisCache.touch)
    delete = _tolerant(lambda *a, **k: False)(RedisCache.delete)
    has_key = _tolerant(lambda *a, **k: False)(RedisCache.has_key)
    get_many = _tolerant(lambda *a, **k: {})(RedisCache.get_many)
    set_many = _tolerant(lambda keys, *a, **k: list(keys))(RedisCache.set_many)
    delete_many = _tolerant(lambda *a, **k: None)(RedisCache.delete_many)
    clear = _tolerant(lambda *a, **k: False)(RedisCache.clear)

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except _ERRORS:
            raise ValueError(f"Key '{key}' not found (cache unavailable).") from None
