"""Production settings harden cookies; login, token and signing lock out after repeated failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.test import Client

from content_modules.accounts.models import AuthFailure
from content_modules.review.models import ReviewTask
from content_modules.review.services import version_submit
from tests.factories import PASSWORD, api_client, make_module

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "CONTENTAPP_ENV": "production",
    "SECRET_KEY": "x" * 20 + "production-test-secret-key-of-sufficient-length-0123456789",
    "DATABASE_URL": "sqlite:////tmp/contentapp-production-check.sqlite3",
    "ALLOWED_HOSTS": "content.example.com",
    "AUDIT_HMAC_KEY": "audit-chain-key-for-the-production-check-0123456789",
    "AUDIT_CHECKPOINT_DIR": os.path.join(tempfile.gettempdir(), "contentapp-check-checkpoints"),
}


def production_settings() -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_SECURE', "
        "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_CONTENT_TYPE_NOSNIFF', "
        "'X_FRAME_OPTIONS')}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "REDIS_URL")}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="contentapp.settings")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_mode_sets_secure_cookie_flags_and_https():
    s = production_settings()
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"]
    assert s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_SSL_REDIRECT"] and s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] and s["X_FRAME_OPTIONS"] == "DENY"


def test_production_mode_passes_djangos_deploy_check():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "REDIS_URL")}
    env.update(PRODUCTION_ENV)
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_session_cookie_is_secure_and_httponly_when_logging_in_in_production_mode(author, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    response = Client().post(
        "/accounts/login/", {"username": author.username, "password": PASSWORD}, secure=True
    )
    cookie = response.cookies["sessionid"]
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_login_page_locks_out_after_repeated_failures_even_with_the_right_password(
    author, settings
):
    settings.LOCKOUT_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": author.username, "password": "no"})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post("/accounts/login/", {"username": author.username, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed attempts" in response.content.decode()
    assert AuthFailure.objects.filter(username=author.username).count() == 3


def test_token_endpoint_locks_out_after_repeated_failures(author, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    client = api_client(None)
    for _ in range(3):
        response = client.post(
            "/api/v1/auth/token", {"username": author.username, "password": "no"}, format="json"
        )
        assert response.status_code == 401 and "Wrong" in response.json()["detail"]
    response = client.post(
        "/api/v1/auth/token", {"username": author.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 403
    assert "Too many failed attempts" in response.json()["detail"]
    assert "token" not in response.json()


def test_signing_locks_out_after_repeated_wrong_passwords(author, medical, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    draft = make_module(author)
    review = version_submit(actor=author, module=draft.module)
    task = review.tasks.get(role="medical")
    client = api_client(medical)
    url = f"/api/v1/reviews/{task.pk}/decision"
    for _ in range(3):
        response = client.post(url, {"decision": "approve", "password": "no"}, format="json")
        assert response.status_code == 403 and "password" in response.json()["errors"]
    response = client.post(url, {"decision": "approve", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert "locked" in response.json()["errors"]["password"][0]
    assert ReviewTask.objects.get(pk=task.pk).status == "open"
    # The lockout covers the login page too: same account, same counter
    login = Client().post("/accounts/login/", {"username": medical.username, "password": PASSWORD})
    assert "Too many failed attempts" in login.content.decode()


pytestmark = pytest.mark.django_db
