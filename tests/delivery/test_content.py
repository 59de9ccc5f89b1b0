"""GET /api/v1/content and /api/v1/content/{module}: approved, unexpired versions only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.library.models import TagKind, VersionStatus
from tests.factories import api_client, make_user, tag

from .helpers import approved, in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


def test_lists_approved_unexpired_versions_with_their_content(author, engine_client):
    a = approved(author, title="First")
    b = approved(author, title="Second")
    in_state(author, VersionStatus.DRAFT)
    in_state(author, VersionStatus.REJECTED)
    approved(author, expires_on=timezone.localdate() - timedelta(days=1))
    body = engine_client.get("/api/v1/content").json()
    assert body["count"] == 2
    first = body["results"][0]
    assert [r["module"] for r in body["results"]] == [a.module_id, b.module_id]
    assert first["version"] == a.number and first["version_id"] == a.pk
    assert first["approval_expires_on"] == a.expires_on.isoformat()
    assert first["approved_at"] is not None
    assert first["content"]["title"] == "First"
    assert first["content"]["tags"]["message"] == "efficacy"


def test_expires_today_is_still_served(author, engine_client):
    v = approved(author, expires_on=timezone.localdate())
    assert [r["module"] for r in engine_client.get("/api/v1/content").json()["results"]] == [
        v.module_id
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("channel=email", {"eff_email", "safety_email"}),
        ("channel=web", {"eff_web"}),
        ("brand=neurolift", {"neuro"}),
        ("market=DE", {"de"}),
        ("message=safety", {"safety_email"}),
        ("theme=adherence", {"adherence"}),
        ("tonality=empathetic", {"empathetic"}),
        ("format=infographic", {"infographic"}),
        ("channel=email&message=efficacy&brand=cardiozen&market=UK", {"eff_email"}),
    ],
)
def test_filters(author, engine_client, query, expected):
    made = {
        "eff_email": approved(author, channels=("email",)),
        "eff_web": approved(author, channels=("web",)),
        "safety_email": approved(author, message="safety", channels=("email",)),
        "neuro": approved(author, brand="neurolift", channels=("rep_visit",)),
        "de": approved(author, market="DE", channels=("rep_visit",)),
        "adherence": approved(
            author, channels=("webinar",), themes=[tag(TagKind.THEME, "adherence")]
        ),
        "empathetic": approved(
            author, channels=("webinar",), tonality=tag(TagKind.TONALITY, "empathetic")
        ),
        "infographic": approved(
            author, channels=("webinar",), format=tag(TagKind.FORMAT, "infographic")
        ),
    }
    names = {v.module_id: name for name, v in made.items()}
    response = engine_client.get(f"/api/v1/content?{query}")
    assert response.status_code == 200, response.content
    assert {names[r["module"]] for r in response.json()["results"]} == expected


@pytest.mark.parametrize(
    "field", ["channel", "brand", "market", "message", "theme", "tonality", "format"]
)
def test_unknown_filter_value_is_400_naming_the_field(engine_client, vocabulary, field):
    response = engine_client.get(f"/api/v1/content?{field}=no-such-thing")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_paginated(author, engine_client):
    for _ in range(5):
        approved(author)
    page = engine_client.get("/api/v1/content?page_size=2&page=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2
    assert page["next"] and page["previous"]
    assert engine_client.get("/api/v1/content?page_size=2&page=9").status_code == 404


def test_detail_answers_the_approved_version(author, engine_client):
    v = approved(author, title="Shown")
    body = engine_client.get(f"/api/v1/content/{v.module_id}").json()
    assert body["module"] == v.module_id and body["content"]["title"] == "Shown"


@pytest.mark.parametrize(
    "status",
    [
        VersionStatus.DRAFT,
        VersionStatus.IN_REVIEW,
        VersionStatus.CHANGES_REQUESTED,
        VersionStatus.REJECTED,
        VersionStatus.SUPERSEDED,
        VersionStatus.EXPIRED,
        VersionStatus.WITHDRAWN,
    ],
)
def test_detail_is_404_when_nothing_is_approved_now(author, engine_client, status):
    v = in_state(author, status)
    response = engine_client.get(f"/api/v1/content/{v.module_id}")
    assert response.status_code == 404
    assert "module" in response.json()["errors"]


def test_detail_is_404_past_the_expiry_date_before_any_job_ran(author, engine_client):
    v = approved(author, expires_on=timezone.localdate() - timedelta(days=1))
    assert engine_client.get(f"/api/v1/content/{v.module_id}").status_code == 404
    assert engine_client.get("/api/v1/content/999999").status_code == 404


def test_who_may_read_content(author, vocabulary):
    v = approved(author)
    for role in ("engine", "admin", "author", "medical_reviewer", "legal_reviewer"):
        client = api_client(make_user(role))
        assert client.get("/api/v1/content").status_code == 200, role
        assert client.get(f"/api/v1/content/{v.module_id}").status_code == 200, role
    assert api_client(make_user(None)).get("/api/v1/content").status_code == 403
    assert api_client(None).get("/api/v1/content").status_code == 401


def test_query_count_does_not_grow_with_the_page(
    author, engine_client, django_assert_max_num_queries
):
    for _ in range(3):
        approved(author)
    engine_client.get("/api/v1/content")  # warm the catalogue
    # token + user, roles, the change feed's position (next_cursor), generation: the page
    # itself is served from memory
    with django_assert_max_num_queries(4):
        engine_client.get("/api/v1/content")
    for _ in range(10):
        approved(author)
    engine_client.get("/api/v1/content")
    with django_assert_max_num_queries(4):
        assert engine_client.get("/api/v1/content").json()["count"] == 13


@pytest.mark.parametrize("value", ["a\x00b", "%00", "é", "x" * 65, "has space"])
def test_filter_values_that_cannot_be_slugs_are_400_not_500(engine_client, vocabulary, value):
    from urllib.parse import urlencode

    response = engine_client.get("/api/v1/content?" + urlencode({"channel": value, "brand": value}))
    assert response.status_code == 400
    assert "channel" in response.json()["errors"]
