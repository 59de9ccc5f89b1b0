"""Token scopes: named machine tokens that may call only what their scopes name."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from content_modules.accounts.models import ApiToken
from content_modules.audit.models import AuditEntry
from content_modules.library.models import VersionStatus
from tests import factories

TOKENS_URL = "/api/v1/auth/tokens"
EVENT = {
    "event_id": "0b7c6f0e-8d5c-4f51-9d52-6f3c1e0a0001",
    "hcp": "HCP-SCOPE-1",
    "type": "opened",
    "occurred_at": "2026-11-20T09:15:00Z",
    "channel": "email",
}


def as_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def issue(client: APIClient, **body):
    return client.post(TOKENS_URL, body, format="json")


@pytest.fixture
def approved(vocabulary, author):
    version = factories.make_module(author=author)
    factories.force_status(version, VersionStatus.APPROVED)
    return version.module


@pytest.fixture
def admin_api(admin_user):
    return factories.api_client(admin_user)


@pytest.mark.django_db
def test_a_content_read_token_lists_content_and_is_refused_events_and_recommendations(
    engine, admin_api, approved
):
    answer = issue(admin_api, username=engine.username, name="cms sync", scopes=["content:read"])
    assert answer.status_code == 201
    assert answer.json()["scopes"] == ["content:read"]
    reader = as_token(answer.json()["token"])
    EVENT["module"] = approved.pk

    listed = reader.get("/api/v1/content")
    one = reader.get(f"/api/v1/content/{approved.pk}")
    changes = reader.get("/api/v1/content/changes", {"changed_since": "0"})
    events = reader.post("/api/v1/events", {"events": [EVENT]}, format="json")
    recommended = reader.post("/api/v1/recommendations", {"hcp": "HCP-SCOPE-1"}, format="json")

    assert listed.status_code == 200
    assert [row["module"] for row in listed.json()["results"]] == [approved.pk]
    assert one.status_code == 200
    assert changes.status_code == 200
    assert events.status_code == 403
    assert "events:write" in events.json()["detail"]
    assert recommended.status_code == 403
    assert "'recommend'" in recommended.json()["detail"]


@pytest.mark.django_db
def test_a_token_without_scopes_keeps_every_engine_right(engine, approved):
    client = factories.api_client(engine)  # issued the old way: no scopes
    EVENT["module"] = approved.pk

    assert client.get("/api/v1/content").status_code == 200
    assert client.post("/api/v1/events", {"events": [EVENT]}, format="json").status_code == 200
    assert client.put("/api/v1/hcps/HCP-SCOPE-2", {}, format="json").status_code == 201
    answer = client.post("/api/v1/recommendations", {"hcp": "HCP-SCOPE-2"}, format="json")
    assert answer.status_code == 200


@pytest.mark.django_db
def test_each_scope_opens_its_endpoints_only(engine, admin_api, approved):
    key = issue(
        admin_api, username=engine.username, name="ingest", scopes=["events:write", "hcps:write"]
    ).json()["token"]
    ingest = as_token(key)
    EVENT["module"] = approved.pk

    assert ingest.post("/api/v1/events", {"events": [EVENT]}, format="json").status_code == 200
    assert ingest.put("/api/v1/hcps/HCP-SCOPE-3", {}, format="json").status_code == 201
    read = ingest.get("/api/v1/hcps/HCP-SCOPE-3")
    assert read.status_code == 403
    assert "hcps:read" in read.json()["detail"]
    assert ingest.get("/api/v1/content").status_code == 403
    assert ingest.post("/api/v1/affinity/train").status_code == 403
    assert ingest.get("/api/v1/ping").status_code == 200


@pytest.mark.django_db
def test_experiment_scopes_open_reading_and_managing_experiments_apart(
    engine, admin_user, admin_api
):
    reader = as_token(
        issue(
            admin_api, username=engine.username, name="results", scopes=["experiments:read"]
        ).json()["token"]
    )
    manager = as_token(
        issue(
            admin_api, username=admin_user.username, name="ops", scopes=["experiments:write"]
        ).json()["token"]
    )
    body = {
        "name": "Scoped A/B",
        "arms": [{"name": "A", "policy": "random"}, {"name": "B", "policy": "model"}],
    }

    created = manager.post("/api/v1/experiments", body, format="json")
    assert created.status_code == 201, created.content
    experiment = created.json()["id"]
    listed = reader.get("/api/v1/experiments")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == [experiment]
    assert reader.get(f"/api/v1/experiments/{experiment}").status_code == 200
    # Reading does not let the engine's token manage, nor managing let the admin's read
    refused = reader.post(f"/api/v1/experiments/{experiment}/stop")
    assert refused.status_code == 403
    refused = manager.get(f"/api/v1/experiments/{experiment}")
    assert refused.status_code == 403 and "experiments:read" in refused.json()["detail"]
    assert manager.post(f"/api/v1/experiments/{experiment}/stop").status_code == 200


@pytest.mark.django_db
def test_a_scoped_token_is_refused_on_endpoints_that_name_no_scope(author, vocabulary):
    key = issue(factories.api_client(author), name="reader", scopes=["content:read"]).json()
    client = as_token(key["token"])

    modules = client.get("/api/v1/modules")

    assert modules.status_code == 403
    assert "limited to the scopes content:read" in modules.json()["detail"]
    # ... and it may not mint a broader token for itself
    minted = issue(client, name="broader")
    assert minted.status_code == 403
    assert ApiToken.objects.filter(user=author).count() == 2  # the api_client's and "reader"
    # it still lists and revokes its account's tokens
    assert client.get(TOKENS_URL).status_code == 200
    assert client.delete("/api/v1/auth/token").status_code == 204


@pytest.mark.django_db
def test_two_tokens_of_one_account_are_revoked_independently(engine, admin_api, approved):
    first = issue(admin_api, username=engine.username, name="one", scopes=["content:read"]).json()
    second = issue(admin_api, username=engine.username, name="two", scopes=["content:read"]).json()

    listed = admin_api.get(TOKENS_URL, {"username": engine.username}).json()
    assert {(t["name"], tuple(t["scopes"]), t["user"]) for t in listed} == {
        ("one", ("content:read",), engine.username),
        ("two", ("content:read",), engine.username),
    }
    assert admin_api.delete(f"{TOKENS_URL}/{first['id']}").status_code == 204

    assert as_token(first["token"]).get("/api/v1/content").status_code == 401
    assert as_token(second["token"]).get("/api/v1/content").status_code == 200
    assert [t["name"] for t in admin_api.get(TOKENS_URL, {"username": "engine-svc"}).json()] == [
        "two"
    ]
    assert AuditEntry.objects.filter(action="token.revoked").count() == 1


@pytest.mark.django_db
def test_an_expired_token_is_401(engine, admin_api, approved):
    answer = issue(admin_api, username=engine.username, name="old", scopes=["content:read"])
    ApiToken.objects.filter(pk=answer.json()["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    refused = as_token(answer.json()["token"]).get("/api/v1/content")

    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


@pytest.mark.django_db
def test_issuing_asks_for_known_scopes_and_an_allowed_account(author, engine, admin_api):
    unknown = issue(admin_api, username=engine.username, name="x", scopes=["everything"])
    other = issue(factories.api_client(author), username=engine.username, name="x")
    nobody = issue(admin_api, username="nobody-here", name="x")
    too_long = issue(admin_api, username=engine.username, name="x", expires_in_days=10_000)

    assert unknown.status_code == 400
    assert "scopes" in str(unknown.json()["errors"])
    assert other.status_code == 403
    assert "username" in other.json()["errors"]
    assert nobody.status_code == 404
    assert too_long.status_code == 400
    assert "expires_in_days" in too_long.json()["errors"]
    assert not ApiToken.objects.filter(user=engine).exists()


@pytest.mark.django_db
def test_an_author_issues_a_scoped_token_for_themselves_and_it_is_audited(author):
    answer = issue(
        factories.api_client(author), name="mine", scopes=["model:read"], expires_in_days=3
    )

    assert answer.status_code == 201
    token = ApiToken.objects.get(pk=answer.json()["id"])
    assert (token.user, token.scope_list) == (author, ["model:read"])
    assert timedelta(days=2, hours=23) < token.expires_at - timezone.now() <= timedelta(days=3)
    entry = AuditEntry.objects.get(action="token.issued", object_id=str(token.pk))
    assert entry.data["scopes"] == ["model:read"]


@pytest.mark.django_db
def test_the_password_exchange_takes_scopes(engine):
    answer = APIClient().post(
        "/api/v1/auth/token",
        {"username": engine.username, "password": factories.PASSWORD, "scopes": ["recommend"]},
        format="json",
    )

    assert answer.status_code == 200
    assert answer.json()["scopes"] == ["recommend"]
    assert as_token(answer.json()["token"]).get("/api/v1/content").status_code == 403


@pytest.mark.django_db
def test_the_command_issues_scoped_and_unrestricted_tokens(engine, approved):
    out, err = StringIO(), StringIO()
    call_command(
        "issue_api_token", engine.username, "--scope", "content:read", stdout=out, stderr=err
    )
    scoped = out.getvalue().strip()
    out2 = StringIO()
    call_command("issue_api_token", engine.username, stdout=out2, stderr=StringIO())
    full = out2.getvalue().strip()

    assert "scopes: content:read" in err.getvalue()
    assert as_token(scoped).get("/api/v1/content").status_code == 200
    assert as_token(scoped).put("/api/v1/hcps/H-1", {}, format="json").status_code == 403
    assert as_token(full).put("/api/v1/hcps/H-1", {}, format="json").status_code == 201


@pytest.mark.django_db
def test_the_admin_site_lists_each_token_with_its_scopes(client, admin_user, engine):
    call_command(
        "issue_api_token",
        engine.username,
        "--name",
        "engine reads",
        "--scope",
        "content:read",
        "--scope",
        "recommend",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    client.force_login(admin_user)

    page = client.get("/admin/accounts/apitoken/")

    assert page.status_code == 200
    assert "engine reads" in page.content.decode()
    assert "content:read, recommend" in page.content.decode()
