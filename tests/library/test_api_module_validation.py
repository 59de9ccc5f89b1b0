"""Bad input to the module endpoints: a clear 4xx naming the field, and nothing half-written."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.audit.models import AuditEntry
from content_modules.library.models import Module, ModuleVersion, Tag, TagKind, VersionStatus
from tests.factories import api_client, force_status, make_module

from .test_api_modules import payload


def _tags(**overrides) -> dict:
    return {**payload()["tags"], **overrides}


def _assert_nothing_written(before_modules: int, before_audit: int) -> None:
    assert Module.objects.count() == before_modules
    assert ModuleVersion.objects.count() == before_modules
    assert AuditEntry.objects.count() == before_audit


BAD_CREATES = [
    pytest.param(
        {"tags": _tags(message="no-such-tag")}, "tags.message", "Unknown", id="unknown-tag"
    ),
    pytest.param(
        {"tags": _tags(message="outcomes")}, "tags.message", "theme tag", id="theme-as-message"
    ),
    pytest.param(
        {"tags": _tags(theme=["efficacy"])}, "tags.theme", "message tag", id="message-as-theme"
    ),
    pytest.param({"tags": _tags(theme=[])}, "tags.theme", "At least one theme", id="empty-themes"),
    pytest.param({"channels": ["email", "fax"]}, "channels", "Unknown channel", id="bad-channel"),
    pytest.param({"channels": []}, "channels", "At least one channel", id="no-channels"),
    pytest.param({"brand": "nobrand"}, "brand", "Unknown brand", id="unknown-brand"),
    pytest.param({"market": "XX"}, "market", "Unknown market", id="unknown-market"),
    pytest.param(
        {"expires_on": (timezone.localdate() - timedelta(days=1)).isoformat()},
        "expires_on",
        "in the past",
        id="expired",
    ),
    pytest.param({"expires_on": "next tuesday"}, "expires_on", "format", id="bad-date"),
    pytest.param({"references": [987654]}, "references", "Unknown reference", id="bad-reference"),
    pytest.param({"variant_of": 987654}, "variant_of", "Unknown module", id="bad-variant"),
    pytest.param({"title": ""}, "title", "blank", id="blank-title"),
    pytest.param({"title": "x" * 201}, "title", "200", id="long-title"),
    pytest.param({"tags": "efficacy"}, "tags", "dictionary", id="tags-not-object"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field", "words"), BAD_CREATES)
def test_bad_create_answers_400_naming_the_field_and_writes_nothing(
    author, vocabulary, overrides, field, words
):
    before = (Module.objects.count(), AuditEntry.objects.count())

    response = api_client(author).post("/api/v1/modules", payload(**overrides), format="json")

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors, errors
    assert words.lower() in " ".join(errors[field]).lower()
    _assert_nothing_written(*before)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "missing", ["title", "headline", "body", "key_message", "brand", "market", "channels", "tags"]
)
def test_missing_required_field_is_400_naming_it(author, vocabulary, missing):
    body = payload()
    del body[missing]

    response = api_client(author).post("/api/v1/modules", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][missing] == ["This field is required."]
    assert Module.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["message", "theme", "tonality", "format"])
def test_missing_tag_is_400_naming_the_vocabulary(author, vocabulary, missing):
    tags = _tags()
    del tags[missing]

    response = api_client(author).post("/api/v1/modules", payload(tags=tags), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][f"tags.{missing}"] == ["This field is required."]


@pytest.mark.django_db
def test_retired_tag_is_refused(author, vocabulary):
    Tag.objects.filter(kind=TagKind.TONALITY, slug="urgent").update(active=False)

    response = api_client(author).post(
        "/api/v1/modules", payload(tags=_tags(tonality="urgent")), format="json"
    )

    assert response.status_code == 400
    assert "retired" in response.json()["errors"]["tags.tonality"][0]


@pytest.mark.django_db
def test_body_over_the_limit_is_400_naming_body(author, vocabulary, settings):
    settings.MODULE_BODY_MAX_CHARS = 100

    response = api_client(author).post("/api/v1/modules", payload(body="x" * 101), format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["body"] == ["Body is 101 characters; the limit is 100."]
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_several_bad_fields_are_reported_together(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules", payload(brand="nobrand", channels=["fax"]), format="json"
    )

    assert response.status_code == 400
    assert {"brand", "channels"} <= set(response.json()["errors"])


@pytest.mark.django_db
def test_malformed_json_is_400(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules", data='{"title": "unterminated', content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["errors"]["non_field_errors"][0]
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_json_body_over_the_upload_limit_is_413(author, vocabulary, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000

    response = api_client(author).post("/api/v1/modules", payload(body="x" * 3000), format="json")

    assert response.status_code == 413
    assert "limit" in response.json()["errors"]["non_field_errors"][0]
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_multipart_body_over_the_upload_limit_is_413(author, vocabulary, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = payload(body="x" * 3000)
    body["tags"] = json.dumps(body["tags"])
    del body["variant_of"], body["references"]

    response = api_client(author).post("/api/v1/modules", body, format="multipart")

    assert response.status_code == 413
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_editing_a_version_in_review_is_409_and_changes_nothing(author):
    version = make_module(author, title="Under review")
    force_status(version, VersionStatus.IN_REVIEW)
    before = AuditEntry.objects.count()

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}", {"title": "Sneaky edit"}, format="json"
    )

    assert response.status_code == 409
    assert "in review" in response.json()["errors"]["status"][0]
    version.refresh_from_db()
    assert version.title == "Under review"
    assert ModuleVersion.objects.filter(module_id=version.module_id).count() == 1
    assert AuditEntry.objects.count() == before


@pytest.mark.django_db
def test_editing_another_authors_module_is_403_and_changes_nothing(author, other_author):
    version = make_module(author, title="Mine")

    response = api_client(other_author).patch(
        f"/api/v1/modules/{version.module_id}", {"title": "Theirs now"}, format="json"
    )

    assert response.status_code == 403
    version.refresh_from_db()
    assert version.title == "Mine"


@pytest.mark.django_db
def test_another_author_gets_403_even_with_invalid_fields(author, other_author):
    version = make_module(author)

    response = api_client(other_author).patch(
        f"/api/v1/modules/{version.module_id}", {"brand": "nobrand"}, format="json"
    )

    assert response.status_code == 403


@pytest.mark.django_db
def test_bad_patch_is_400_and_leaves_the_draft_unchanged(author):
    version = make_module(author, title="Stays")
    before_hash = version.content_hash

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"title": "Changed", "tags": {"theme": []}},
        format="json",
    )

    assert response.status_code == 400
    assert "tags.theme" in response.json()["errors"]
    version.refresh_from_db()
    assert (version.title, version.content_hash) == ("Stays", before_hash)


@pytest.mark.django_db
def test_edit_of_approved_version_with_an_expired_date_asks_for_a_new_one(author):
    approved = make_module(author)
    force_status(
        approved, VersionStatus.APPROVED, expires_on=timezone.localdate() - timedelta(days=3)
    )

    response = api_client(author).patch(
        f"/api/v1/modules/{approved.module_id}", {"title": "Refresh"}, format="json"
    )

    assert response.status_code == 400
    assert "expires_on" in response.json()["errors"]
    assert ModuleVersion.objects.filter(module_id=approved.module_id).count() == 1


@pytest.mark.django_db
def test_unknown_filter_value_is_400_naming_the_filter(author):
    response = api_client(author).get("/api/v1/modules?status=bogus")

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


@pytest.mark.django_db
def test_a_misspelt_field_is_400_naming_it_not_silently_dropped(author):
    version = make_module(author, title="Kept")

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"titel": "Typo", "tags": {"themes": ["adherence"]}},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "Unknown field" in errors["titel"][0]
    assert "Unknown field" in errors["tags.themes"][0]
    version.refresh_from_db()
    assert version.title == "Kept"


@pytest.mark.django_db
def test_sending_back_what_get_answered_is_accepted(author):
    version = make_module(author)
    client = api_client(author)
    body = client.get(f"/api/v1/modules/{version.module_id}").json()
    del body["image"]
    body["headline"] = "Round trip"

    response = client.patch(f"/api/v1/modules/{version.module_id}", body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["headline"] == "Round trip"
    assert response.json()["version"] == 1
