"""Multipart module requests: images, JSON-string fields, rejected uploads that store nothing."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from content_modules.audit.models import AuditEntry
from content_modules.library.models import ImageAsset, Module, Reference, VersionStatus
from tests.factories import api_client, force_status, make_module

from .test_api_modules import payload


def png_upload(name: str = "hero.png", size=(64, 48)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def multipart(**overrides) -> dict:
    """A valid multipart body: tags as a JSON string, channels as repeated fields."""
    body = payload()
    body["tags"] = json.dumps(body["tags"])
    del body["variant_of"], body["references"]
    body.update(overrides)
    return body


def stored_files() -> list[str]:
    root = Path(django_settings.MEDIA_ROOT)
    return sorted(
        str(Path(folder, name).relative_to(root))
        for folder, _dirs, names in os.walk(root)
        for name in names
    )


@pytest.mark.django_db
def test_multipart_create_with_image_stores_renditions(
    author, vocabulary, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(author).post(
            "/api/v1/modules", multipart(image=png_upload()), format="multipart"
        )

    assert response.status_code == 201, response.json()
    data = response.json()
    asset = ImageAsset.objects.get()
    assert Module.objects.get(pk=data["id"]).latest.image == asset
    assert data["image"]["width"] == 64 and data["image"]["height"] == 48
    base = f"http://testserver/api/v1/images/{asset.pk}"
    assert data["image"]["url"] == f"{base}/full"
    assert data["image"]["web_url"] == f"{base}/web"
    assert data["image"]["thumbnail_url"] == f"{base}/thumbnail"
    assert data["channels"] == ["email", "web"]
    assert data["tags"]["theme"] == ["adherence", "outcomes"]
    assert stored_files() == sorted([asset.image.name, asset.web.name, asset.thumbnail.name])


@pytest.mark.django_db
def test_multipart_accepts_channels_and_references_as_json_strings(author, vocabulary):
    reference = Reference.objects.create(citation="Smith 2025", created_by=author)

    response = api_client(author).post(
        "/api/v1/modules",
        multipart(channels='["web", "webinar"]', references=f"[{reference.pk}]"),
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["channels"] == ["web", "webinar"]
    assert response.json()["references"] == [reference.pk]


@pytest.mark.django_db
def test_multipart_accepts_repeated_reference_fields(author, vocabulary):
    first = Reference.objects.create(citation="One", created_by=author)
    second = Reference.objects.create(citation="Two", created_by=author)

    response = api_client(author).post(
        "/api/v1/modules", multipart(references=[first.pk, second.pk]), format="multipart"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["references"] == sorted([first.pk, second.pk])


@pytest.mark.django_db
def test_multipart_tags_that_are_not_json_name_the_field(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules", multipart(tags='{"message": "efficacy",'), format="multipart"
    )

    assert response.status_code == 400
    assert "Not valid JSON" in response.json()["errors"]["tags"][0]
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_multipart_without_channels_says_it_is_required(author, vocabulary):
    body = multipart()
    del body["channels"]

    response = api_client(author).post("/api/v1/modules", body, format="multipart")

    assert response.status_code == 400
    assert response.json()["errors"]["channels"] == ["This field is required."]


@pytest.mark.django_db
def test_a_text_file_named_png_is_400_and_stores_no_file_and_no_row(author, vocabulary):
    fake = SimpleUploadedFile("photo.png", b"just some words, not pixels", "image/png")

    response = api_client(author).post("/api/v1/modules", multipart(image=fake), format="multipart")

    assert response.status_code == 400
    assert "not an image" in response.json()["errors"]["image"][0]
    assert stored_files() == []
    assert ImageAsset.objects.count() == 0
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_a_good_image_with_an_unknown_brand_stores_no_file_and_no_row(
    author, vocabulary, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(author).post(
            "/api/v1/modules",
            multipart(image=png_upload(), brand="no-such-brand"),
            format="multipart",
        )

    assert response.status_code == 400
    assert "brand" in response.json()["errors"]
    assert stored_files() == []
    assert ImageAsset.objects.count() == 0
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_an_image_over_the_size_cap_is_413_naming_image(author, vocabulary, settings):
    settings.IMAGE_MAX_BYTES = 100

    response = api_client(author).post(
        "/api/v1/modules", multipart(image=png_upload(size=(300, 300))), format="multipart"
    )

    assert response.status_code == 413
    assert "limit" in response.json()["errors"]["image"][0]
    assert stored_files() == []
    assert ImageAsset.objects.count() == 0
    assert Module.objects.count() == 0


@pytest.mark.django_db
def test_patch_with_an_image_sets_it_and_json_null_removes_it(
    author, django_capture_on_commit_callbacks
):
    version = make_module(author)
    client = api_client(author)

    with django_capture_on_commit_callbacks(execute=True):
        added = client.patch(
            f"/api/v1/modules/{version.module_id}",
            {"image": png_upload()},
            format="multipart",
        )
    removed = client.patch(f"/api/v1/modules/{version.module_id}", {"image": None}, format="json")

    assert added.status_code == 200, added.json()
    assert added.json()["image"]["width"] == 64
    assert len(stored_files()) == 3
    assert removed.status_code == 200, removed.json()
    assert removed.json()["image"] is None
    version.refresh_from_db()
    assert version.image is None


@pytest.mark.django_db
def test_patch_with_a_bad_image_keeps_the_draft_and_stores_nothing(author):
    version = make_module(author, title="Unchanged")

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"title": "Changed", "image": SimpleUploadedFile("x.webp", b"RIFF0000WEBPjunk")},
        format="multipart",
    )

    assert response.status_code == 400
    assert "image" in response.json()["errors"]
    version.refresh_from_db()
    assert version.title == "Unchanged"
    assert stored_files() == []
    assert ImageAsset.objects.count() == 0


@pytest.mark.django_db
def test_image_stored_inside_a_transaction_that_fails_leaves_no_file_and_no_row(
    author, django_capture_on_commit_callbacks
):
    # Every field is valid, so the asset row is written; then the edit hits a
    # version in review (409) and the whole transaction rolls back.
    version = make_module(author, title="In review")
    force_status(version, VersionStatus.IN_REVIEW)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client(author).patch(
            f"/api/v1/modules/{version.module_id}",
            {"title": "Edit", "image": png_upload()},
            format="multipart",
        )

    assert response.status_code == 409
    assert callbacks == []
    assert stored_files() == []
    assert ImageAsset.objects.count() == 0
    assert not AuditEntry.objects.filter(action="image.uploaded").exists()
    version.refresh_from_db()
    assert (version.title, version.image_id) == ("In review", None)


@pytest.mark.django_db
def test_multipart_patch_changes_only_the_tags_it_names(author):
    version = make_module(author)

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"tags": '{"format": "image"}', "channels": "webinar"},
        format="multipart",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["tags"]["format"] == "image"
    assert response.json()["tags"]["message"] == "efficacy"
    assert response.json()["channels"] == ["webinar"]
    assert response.json()["title"] == version.title
