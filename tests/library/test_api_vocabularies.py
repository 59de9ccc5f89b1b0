"""Vocabulary endpoints: every signed-in caller reads, only admins add terms."""

import pytest

from content_modules.audit.models import AuditEntry
from content_modules.library.models import Tag, TagKind
from tests.factories import VOCABULARY, api_client


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [k.value for k in TagKind])
def test_any_signed_in_role_reads_a_vocabulary(vocabulary, author, medical, engine, kind):
    for user in (author, medical, engine):
        response = api_client(user).get(f"/api/v1/vocabularies/{kind}")

        assert response.status_code == 200
        assert sorted(item["slug"] for item in response.json()) == sorted(VOCABULARY[kind])
        assert all(set(item) == {"slug", "label"} for item in response.json())


@pytest.mark.django_db
def test_retired_terms_are_not_listed(vocabulary, author):
    Tag.objects.filter(kind=TagKind.FORMAT, slug="image").update(active=False)

    response = api_client(author).get("/api/v1/vocabularies/format")

    assert "image" not in {item["slug"] for item in response.json()}


@pytest.mark.django_db
def test_reading_without_credentials_is_401(vocabulary):
    assert api_client().get("/api/v1/vocabularies/message").status_code == 401


@pytest.mark.django_db
def test_unknown_vocabulary_is_404(author):
    response = api_client(author).get("/api/v1/vocabularies/colour")

    assert response.status_code == 404
    assert "Unknown vocabulary" in response.json()["errors"]["kind"][0]


@pytest.mark.django_db
def test_admin_adds_a_term_and_it_is_audited(vocabulary, admin_user):
    response = api_client(admin_user).post(
        "/api/v1/vocabularies/tonality",
        {"slug": "conversational", "label": "Conversational"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {"slug": "conversational", "label": "Conversational"}
    assert Tag.objects.filter(kind="tonality", slug="conversational", active=True).exists()
    assert AuditEntry.objects.filter(action="tag.created").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["author", "medical", "engine"])
def test_only_admins_add_terms(vocabulary, request, role_fixture):
    user = request.getfixturevalue(role_fixture)

    response = api_client(user).post(
        "/api/v1/vocabularies/theme", {"slug": "cost", "label": "Cost"}, format="json"
    )

    assert response.status_code == 403
    assert not Tag.objects.filter(slug="cost").exists()


@pytest.mark.django_db
def test_adding_an_existing_term_is_409(vocabulary, admin_user):
    response = api_client(admin_user).post(
        "/api/v1/vocabularies/message", {"slug": "efficacy", "label": "Again"}, format="json"
    )

    assert response.status_code == 409
    assert "slug" in response.json()["errors"]
    assert Tag.objects.filter(kind="message", slug="efficacy").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "Not A Slug!", "label": "x"}, "slug"),
        ({"slug": "ok-slug"}, "label"),
        ({"label": "No slug"}, "slug"),
    ],
)
def test_bad_new_term_is_400_naming_the_field(vocabulary, admin_user, body, field):
    response = api_client(admin_user).post("/api/v1/vocabularies/format", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.django_db
def test_adding_to_an_unknown_vocabulary_is_404(admin_user):
    response = api_client(admin_user).post(
        "/api/v1/vocabularies/colour", {"slug": "red", "label": "Red"}, format="json"
    )

    assert response.status_code == 404
    assert not Tag.objects.filter(slug="red").exists()
