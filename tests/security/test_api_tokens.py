"""API tokens: only a hash stored, an expiry, a name, several per user, one revoked alone
(issue 11 point 11)."""

from __future__ import annotations

import importlib
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from content_modules.accounts.models import ApiToken
from content_modules.audit.models import AuditEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/v1/auth/token"


def issue(user, name: str = "", **extra) -> dict:
    body = {"username": user.username, "password": PASSWORD, **extra}
    if name:
        body["name"] = name
    response = APIClient().post(TOKEN_URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def table_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        return repr(cursor.fetchall())


def test_only_a_hash_of_the_token_is_stored(author, vocabulary):
    key = issue(author)["token"]
    # The secret appears nowhere in the table, and the audit trail does not hold it either
    assert key not in table_text()
    assert not any(key in repr(e.data) for e in AuditEntry.objects.all())
    # Yet it works
    assert client_with(key).get("/api/v1/vocabularies/message").status_code == 200


def test_a_token_has_a_name_and_expires(author, vocabulary, settings):
    settings.API_TOKEN_EXPIRY_DAYS = 30
    answer = issue(author, name="nightly sync")
    token = ApiToken.objects.get(pk=answer["id"])
    assert token.name == answer["name"] == "nightly sync"
    expected = timezone.now() + timedelta(days=30)
    assert abs((token.expires_at - expected).total_seconds()) < 60
    # When its time is up (moved, as the clock would)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client_with(answer["token"]).get("/api/v1/vocabularies/message")
    # Then it is refused, saying why
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_shorter_lifetime_may_be_asked_for_but_not_a_longer_one(author, settings):
    settings.API_TOKEN_EXPIRY_DAYS = 30
    short = ApiToken.objects.get(pk=issue(author, expires_in_days=2)["id"])
    assert short.expires_at < timezone.now() + timedelta(days=2, minutes=1)
    response = APIClient().post(
        TOKEN_URL,
        {"username": author.username, "password": PASSWORD, "expires_in_days": 31},
        format="json",
    )
    assert response.status_code == 400 and "expires_in_days" in response.json()["errors"]


def test_a_user_holds_several_tokens_lists_them_and_revokes_one_alone(author, vocabulary):
    ci = issue(author, name="CI")
    laptop = issue(author, name="laptop")
    # Listing shows both, by name and prefix, never a secret
    listed = client_with(laptop["token"]).get("/api/v1/auth/tokens").json()
    assert [t["name"] for t in listed] == ["laptop", "CI"]
    assert all("token" not in t and "key_hash" not in t for t in listed)
    assert listed[1]["prefix"] == ci["token"][:8]
    # Revoking one leaves the other working
    revoked = client_with(laptop["token"]).delete(f"/api/v1/auth/tokens/{ci['id']}")
    assert revoked.status_code == 204
    assert client_with(ci["token"]).get("/api/v1/vocabularies/message").status_code == 401
    assert client_with(laptop["token"]).get("/api/v1/vocabularies/message").status_code == 200
    assert AuditEntry.objects.filter(action="token.revoked", actor=author).count() == 1


def test_nobody_revokes_or_lists_another_users_token(author, medical, vocabulary):
    theirs = issue(medical, name="medical's")
    mine = client_with(issue(author)["token"])
    assert mine.delete(f"/api/v1/auth/tokens/{theirs['id']}").status_code == 404
    assert [t["name"] for t in mine.get("/api/v1/auth/tokens").json()] == ["API token"]
    assert client_with(theirs["token"]).get("/api/v1/vocabularies/message").status_code == 200


def test_a_user_is_told_when_holding_too_many_tokens(author, settings):
    settings.API_TOKEN_MAX_PER_USER = 2
    settings.LOGIN_THROTTLE_RATE = "100/min"
    issue(author)
    issue(author)
    response = APIClient().post(
        TOKEN_URL, {"username": author.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 409 and "revoke one" in response.json()["detail"]


def test_the_admin_shows_tokens_without_the_secret_and_deleting_revokes(
    author, admin_user, vocabulary
):
    answer = issue(author, name="dam-sync")
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/accounts/apitoken/").content.decode()
    assert "dam-sync" in page and answer["token"][:8] in page
    assert answer["token"] not in page
    token = ApiToken.objects.get(pk=answer["id"])
    detail = client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert answer["token"] not in detail and token.key_hash not in detail
    # Deleting it in the admin revokes it, audited
    client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert client_with(answer["token"]).get("/api/v1/vocabularies/message").status_code == 401
    assert AuditEntry.objects.filter(action="token.revoked", actor=admin_user).exists()


def test_the_migration_hashes_existing_plain_tokens_which_keep_working(author, vocabulary):
    # Given a database from before, with DRF's plain-text token table and one token in it
    plain = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [plain, timezone.now(), author.pk],
        )
    migration = importlib.import_module(
        "content_modules.accounts.migrations.0003_hashed_api_tokens_and_attempt_counters"
    )

    # When the data migration runs (given what it uses of a schema editor: SQLite
    # refuses a real one inside the test's transaction)
    def execute(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    editor = SimpleNamespace(
        connection=connection, execute=execute, quote_name=connection.ops.quote_name
    )
    migration.hash_plain_tokens(global_apps, editor)
    # Then the old secret still works, only its hash is kept, and the plain table is gone
    assert client_with(plain).get("/api/v1/vocabularies/message").status_code == 200
    assert plain not in table_text()
    assert "authtoken_token" not in connection.introspection.table_names()


def test_the_issue_api_token_command_prints_a_working_secret(author, vocabulary):
    out = io.StringIO()
    call_command(
        "issue_api_token", author.username, "--name", "ops", stdout=out, stderr=io.StringIO()
    )
    key = out.getvalue().strip()
    assert client_with(key).get("/api/v1/vocabularies/message").status_code == 200
    assert ApiToken.objects.get(user=author).name == "ops"
