"""Settings come from the environment: each case runs manage.py in a fresh process.

A fresh process with a controlled environment is the only honest way to test
settings: pytest's own process has already imported them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection

from tests.services import require_postgres, require_redis

BASE_DIR = Path(__file__).resolve().parent.parent

# Printed by a child process: the settings a test asserts on, as JSON.
PRINT_SETTINGS = """
import json
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from contentapp.celery import app
cache = caches["default"]
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_host": settings.DATABASES["default"].get("HOST", ""),
    "cache": (
        "redis" if isinstance(cache, RedisCache)
        else "locmem" if isinstance(cache, LocMemCache)
        else type(cache).__name__
    ),
    "cache_location": settings.CACHES["default"].get("LOCATION", ""),
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "celery_app_eager": app.conf.task_always_eager,
    "broker": settings.CELERY_BROKER_URL,
    "celery_app_broker": app.conf.broker_url,
    "result_backend": settings.CELERY_RESULT_BACKEND,
    "debug": settings.DEBUG,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "hsts_preload": settings.SECURE_HSTS_PRELOAD,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "allowed_hosts": settings.ALLOWED_HOSTS,
}))
"""


def base_env(**extra: str) -> dict[str, str]:
    """Only PATH and HOME, plus what the test adds: nothing leaks in from this process."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(extra)
    return env


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    values = {
        "CONTENTAPP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "content.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "audit-checkpoints"),
    }
    values.update(extra)
    return base_env(**{k: v for k, v in values.items() if v is not None})


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def settings_in(env: dict[str, str]) -> dict:
    result = manage(env, "shell", "-c", PRINT_SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_pass_check_deploy_with_no_warnings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_empty_environment_runs_on_sqlite_with_eager_tasks_and_a_local_memory_cache():
    values = settings_in(base_env())

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["db_name"] == str(BASE_DIR / "db.sqlite3")
    assert values["eager"] is True
    assert values["celery_app_eager"] is True
    assert values["cache"] == "locmem"
    assert values["broker"] == "memory://"
    assert values["debug"] is True


def test_database_url_and_redis_url_switch_to_postgresql_and_redis():
    values = settings_in(
        base_env(
            DATABASE_URL="postgres://app:pw@db.internal:5432/contentapp",
            REDIS_URL="redis://cache.internal:6379/3",
        )
    )

    assert values["engine"] == "django.db.backends.postgresql"
    assert (values["db_name"], values["db_host"]) == ("contentapp", "db.internal")
    assert values["cache"] == "redis"
    assert values["cache_location"] == "redis://cache.internal:6379/3"
    assert values["broker"] == values["celery_app_broker"] == "redis://cache.internal:6379/3"
    assert values["result_backend"] == "redis://cache.internal:6379/3"
    assert values["eager"] is False
    assert values["celery_app_eager"] is False


CONNECT = """
import json, sys, uuid
from django.core.cache import cache
from django.db import connection
from contentapp.celery import app
connection.ensure_connection()
key = "settings-test-" + uuid.uuid4().hex
cache.set(key, "round-trip", 30)
got = cache.get(key)
cache.delete(key)
with app.connection_for_write() as conn:
    conn.ensure_connection(max_retries=1)
    transport = conn.transport_cls
print(json.dumps({"vendor": connection.vendor, "cache": got, "transport": transport}))
"""


def test_the_urls_reach_the_real_postgresql_and_redis(db):
    require_postgres()
    require_redis()
    # The child connects to this run's test database, which surely exists.
    test_db = connection.settings_dict["NAME"]
    database_url = urlunparse(urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{test_db}"))
    env = base_env(DATABASE_URL=database_url, REDIS_URL=os.environ["REDIS_URL"])

    result = manage(env, "shell", "-c", CONNECT)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {"vendor": "postgresql", "cache": "round-trip", "transport": "redis"}


@pytest.mark.parametrize(
    "secret",
    [None, "", "dev-only-insecure-secret-key-change-me-in-production-0123456789", "short-key"],
    ids=["missing", "empty", "development-default", "too-short"],
)
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, secret):
    result = manage(production_env(tmp_path, SECRET_KEY=secret), "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in production" in result.stderr
    assert "at least 50 characters" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts(tmp_path):
    result = manage(production_env(tmp_path, ALLOWED_HOSTS=None), "check")

    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set in production" in result.stderr


def test_production_refuses_to_start_without_database_url(tmp_path):
    result = manage(production_env(tmp_path, DATABASE_URL=None), "check")

    assert result.returncode != 0
    assert "DATABASE_URL must be set in production" in result.stderr


def test_production_sets_secure_cookies_hsts_and_ssl_redirect(tmp_path):
    values = settings_in(production_env(tmp_path))

    assert values["debug"] is False
    assert values["session_cookie_secure"] is True
    assert values["csrf_cookie_secure"] is True
    assert values["session_cookie_httponly"] is True
    assert values["hsts_seconds"] >= 31_536_000
    assert values["hsts_subdomains"] is True
    assert values["hsts_preload"] is True
    assert values["ssl_redirect"] is True
    assert values["allowed_hosts"] == ["content.example.com"]


REQUEST = """
import json
from django.test import Client
client = Client()
plain = client.get("/accounts/login/", HTTP_HOST="content.example.com")
secure = client.get("/accounts/login/", HTTP_HOST="content.example.com", secure=True)
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "status": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
    "nosniff": secure.get("X-Content-Type-Options", ""),
    "frame": secure.get("X-Frame-Options", ""),
}))
"""


def test_production_responses_carry_hsts_secure_cookies_and_redirect_to_https(tmp_path):
    # As a deployment does: migrate, collect the static files (manifest storage needs them).
    env = production_env(tmp_path, STATIC_ROOT=str(tmp_path / "static"))
    assert manage(env, "migrate", "--noinput").returncode == 0
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr

    result = manage(env, "shell", "-c", REQUEST)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["plain_status"] == 301
    assert values["plain_location"] == "https://content.example.com/accounts/login/"
    assert values["status"] == 200
    assert values["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert values["csrf_cookie_secure"] is True
    assert values["nosniff"] == "nosniff"
    assert values["frame"] == "DENY"


def test_the_setting_helpers_reject_a_non_integer_limit():
    result = manage(base_env(IMAGE_MAX_BYTES="ten megabytes"), "check")

    assert result.returncode != 0
    assert "IMAGE_MAX_BYTES must be an integer, got 'ten megabytes'" in result.stderr


def test_upload_limits_come_from_the_environment():
    code = (
        "from django.conf import settings; "
        "print(settings.IMAGE_MAX_BYTES, settings.IMAGE_MAX_PIXELS, "
        "settings.IMAGE_WEB_MAX_SIDE, settings.IMAGE_THUMB_MAX_SIDE)"
    )
    result = manage(
        base_env(
            IMAGE_MAX_BYTES="5000000",
            IMAGE_MAX_PIXELS="1000000",
            IMAGE_WEB_MAX_SIDE="800",
            IMAGE_THUMB_MAX_SIDE="120",
        ),
        "shell",
        "-c",
        code,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["5000000", "1000000", "800", "120"]
