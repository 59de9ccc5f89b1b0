"""Roles and permissions: default deny, the library hidden from the engine, writes for authors."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser

from content_modules.accounts.permissions import (
    AdminsWrite,
    AuthorsWrite,
    CanSeeLibrary,
    IsAdmin,
    IsAuthorOrAdmin,
    IsEngineOrAdmin,
    IsReviewer,
    ReadOnly,
)
from content_modules.library.models import Module, Reference
from tests.factories import api_client, make_module, make_user
from tests.library.test_api_modules import payload

ROLES = ["author", "medical", "legal", "regulatory", "engine", "admin_user", "no_role"]

# What each permission class answers for each role (any method).
EXPECTED = {
    IsAdmin: {"admin_user"},
    IsAuthorOrAdmin: {"author", "admin_user"},
    IsEngineOrAdmin: {"engine", "admin_user"},
    CanSeeLibrary: {"author", "medical", "legal", "regulatory", "admin_user"},
    IsReviewer: {"medical", "legal", "regulatory"},
}


@pytest.fixture
def no_role(db):
    return make_user(None)


@pytest.fixture
def users(request, db):
    return {name: request.getfixturevalue(name) for name in ROLES}


def _allows(permission, user, method: str = "GET") -> bool:
    return permission().has_permission(SimpleNamespace(user=user, method=method), view=None)


@pytest.mark.django_db
@pytest.mark.parametrize("permission", list(EXPECTED), ids=lambda p: p.__name__)
def test_each_permission_class_admits_exactly_its_roles(users, permission):
    admitted = {name for name, user in users.items() if _allows(permission, user)}

    assert admitted == EXPECTED[permission]
    assert not _allows(permission, AnonymousUser())


def test_read_only_admits_safe_methods_only():
    user = AnonymousUser()

    assert [
        m
        for m in ("GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE")
        if _allows(ReadOnly, user, m)
    ] == ["GET", "HEAD", "OPTIONS"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("permission", "writers"),
    [(AuthorsWrite, {"author", "admin_user"}), (AdminsWrite, {"admin_user"})],
    ids=["AuthorsWrite", "AdminsWrite"],
)
def test_write_permissions_let_every_role_read_and_only_theirs_write(users, permission, writers):
    readers = {n for n, u in users.items() if _allows(permission, u, "GET")}
    allowed = {
        n
        for n, u in users.items()
        if all(_allows(permission, u, m) for m in ("POST", "PUT", "PATCH", "DELETE"))
    }

    assert readers == set(users)
    assert allowed == writers


@pytest.mark.django_db
def test_permission_classes_compose_with_drf_operators(users):
    combined = CanSeeLibrary & (ReadOnly | IsAuthorOrAdmin)

    readers = {n for n, u in users.items() if _allows(combined, u, "GET")}
    writers = {n for n, u in users.items() if _allows(combined, u, "POST")}

    assert readers == EXPECTED[CanSeeLibrary]
    assert writers == {"author", "admin_user"}


def _library_urls(module_id: int) -> list[str]:
    return [
        "/api/v1/modules",
        f"/api/v1/modules/{module_id}",
        f"/api/v1/modules/{module_id}/versions",
        f"/api/v1/modules/{module_id}/audit",
        "/api/v1/references",
    ]


@pytest.mark.django_db
def test_without_credentials_every_endpoint_is_401(author):
    module_id = make_module(author).module_id
    client = api_client()

    answers = {
        url: client.get(url).status_code
        for url in [*_library_urls(module_id), "/api/v1/vocabularies/message"]
    }
    answers["POST /modules"] = client.post("/api/v1/modules", {}, format="json").status_code

    assert set(answers.values()) == {401}, answers


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["engine", "no_role"])
def test_engine_and_roleless_users_cannot_see_the_library(request, author, vocabulary, role):
    user = request.getfixturevalue(role)
    module_id = make_module(author).module_id
    client = api_client(user)

    reads = {url: client.get(url).status_code for url in _library_urls(module_id)}
    create = client.post("/api/v1/modules", payload(), format="json")
    edit = client.patch(f"/api/v1/modules/{module_id}", {"title": "x"}, format="json")
    reference = client.post("/api/v1/references", {"citation": "x"}, format="json")
    vocab_add = client.post(
        "/api/v1/vocabularies/theme", {"slug": "x", "label": "X"}, format="json"
    )

    assert set(reads.values()) == {403}, reads
    assert (create.status_code, edit.status_code) == (403, 403)
    assert (reference.status_code, vocab_add.status_code) == (403, 403)
    assert "approved content only" in create.json()["errors"]["non_field_errors"][0]
    assert Module.objects.count() == 1 and Reference.objects.count() == 0


@pytest.mark.django_db
def test_engine_still_reads_vocabularies(engine, vocabulary):
    assert api_client(engine).get("/api/v1/vocabularies/tonality").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["medical", "legal", "regulatory"])
def test_reviewers_read_the_library_but_cannot_create_or_edit(request, author, vocabulary, role):
    reviewer = request.getfixturevalue(role)
    version = make_module(author, title="Author's words")
    client = api_client(reviewer)

    reads = {url: client.get(url).status_code for url in _library_urls(version.module_id)}
    create = client.post("/api/v1/modules", payload(), format="json")
    edit = client.patch(f"/api/v1/modules/{version.module_id}", {"title": "Mine"}, format="json")

    assert set(reads.values()) == {200}, reads
    assert create.status_code == 403
    assert "Only authors and administrators" in create.json()["errors"]["non_field_errors"][0]
    assert edit.status_code == 403
    version.refresh_from_db()
    assert version.title == "Author's words"
    assert Module.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["author", "admin_user"])
def test_authors_and_admins_create_modules(request, vocabulary, role):
    user = request.getfixturevalue(role)

    response = api_client(user).post("/api/v1/modules", payload(), format="json")

    assert response.status_code == 201
    assert response.json()["created_by"] == user.username


@pytest.mark.django_db
def test_an_author_edits_own_module_but_not_anothers(author, other_author):
    own = make_module(author)
    theirs = make_module(other_author, title="Otto's")
    client = api_client(author)

    assert (
        client.patch(f"/api/v1/modules/{own.module_id}", {"title": "ok"}, format="json")
    ).status_code == 200
    refused = client.patch(f"/api/v1/modules/{theirs.module_id}", {"title": "no"}, format="json")

    assert refused.status_code == 403
    assert "authors and admins" in refused.json()["errors"]["non_field_errors"][0]
    theirs.refresh_from_db()
    assert theirs.title == "Otto's"
