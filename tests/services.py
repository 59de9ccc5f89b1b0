"""Which real services a test run has, and how a test asks for one.

On a bare machine (the README test command with nothing set) tests that need
PostgreSQL, Redis, a Celery worker or Chromium skip with a reason. CI sets
CONTENTAPP_REQUIRE_SERVICES=1: then a missing service fails the test instead.
"""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

REQUIRE_SERVICES = os.environ.get("CONTENTAPP_REQUIRE_SERVICES", "") in {"1", "true", "yes"}
CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver")


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (CONTENTAPP_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


def redis_answers(url: str | None = None) -> bool:
    url = url or redis_url() or "redis://127.0.0.1:6379/0"
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        _missing("needs PostgreSQL: set DATABASE_URL=postgres://...")


def require_redis() -> None:
    if not redis_url():
        _missing("needs Redis: set REDIS_URL=redis://...")
    if not redis_answers():
        _missing(f"Redis at {redis_url()} does not answer")


def require_chromium() -> None:
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        _missing(f"needs Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    if not (shutil.which(CHROMEDRIVER) or os.path.exists(CHROMEDRIVER)):
        _missing(f"needs chromedriver at {CHROMEDRIVER}")


def other_connection():
    """A psycopg connection of its own to the test database (as another worker's)."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)
