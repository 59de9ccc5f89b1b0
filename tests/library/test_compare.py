"""Side-by-side compare of two versions of a module: the page, its picker, its errors."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from PIL import Image

from content_modules.library import services
from content_modules.library.images import process_image_upload, store_image_asset
from content_modules.library.models import VersionStatus
from tests import factories


def _image(author, colour):
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), colour).save(buffer, "PNG")
    upload = SimpleUploadedFile("pic.png", buffer.getvalue(), content_type="image/png")
    with transaction.atomic():
        return store_image_asset(actor=author, processed=process_image_upload(upload))


@pytest.fixture
def two_versions(db, author, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first_image = _image(author, (200, 30, 30))
        second_image = _image(author, (30, 30, 200))
    v1 = factories.make_module(
        author,
        headline="Fewer heart attacks",
        key_message="CardioZen reduced major adverse cardiac events by 24% versus placebo.",
        image=first_image,
    )
    factories.force_status(v1, VersionStatus.APPROVED)
    v2 = services.module_edit(
        actor=author,
        module=v1.module,
        changes={
            "key_message": (
                "CardioZen reduced major adverse cardiac events by 30% <b>versus</b> placebo."
            ),
            "image": second_image,
        },
    )
    return v1, v2


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_compare_shows_both_versions_field_by_field_with_thumbnails(two_versions, medical):
    v1, v2 = two_versions

    response = _client(medical).get(f"/library/modules/{v1.module_id}/compare/?a=1&b=2")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Compare versions 1 and 2" in html
    assert "by 24% versus placebo" in html
    # Escaped, never markup.
    assert "by 30% &lt;b&gt;versus&lt;/b&gt; placebo" in html
    assert "<b>versus</b>" not in html
    assert f'src="/library/images/{v1.image_id}/thumbnail/"' in html
    assert f'src="/library/images/{v2.image_id}/thumbnail/"' in html
    assert '<tr data-field="key_message" class="changed">' in html
    assert '<tr data-field="image" class="changed">' in html
    assert '<tr data-field="headline">' in html
    assert "2 fields differ: key message, image." in html
    assert '<tr data-field="image_alt">' in html


def test_the_thumbnails_are_served_to_the_people_who_see_the_page(two_versions, medical):
    v1, v2 = two_versions

    image = _client(medical).get(f"/library/images/{v2.image_id}/thumbnail/")

    assert image.status_code == 200
    assert image["Content-Type"].startswith("image/")


def test_compare_without_a_choice_shows_the_approved_version_against_the_latest(
    two_versions, author
):
    v1, _ = two_versions

    response = _client(author).get(f"/library/modules/{v1.module_id}/compare/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Compare versions 1 and 2" in html
    assert '<option value="1" selected>Version 1</option>' in html


def test_module_and_review_pages_link_to_the_compare(two_versions, author):
    v1, _ = two_versions

    html = _client(author).get(f"/library/modules/{v1.module_id}/").content.decode()

    assert f'action="/library/modules/{v1.module_id}/compare/"' in html
    assert 'id="compare-a-history"' in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("a=1&b=9", "with version", "has no version 9"),
        ("a=x&b=2", "Compare version", "Version must be a whole number."),
        ("a=1", "with version", "Choose a version."),
        ("a=0&b=2", "Compare version", "greater than or equal to 1"),
    ],
)
def test_bad_versions_are_a_400_naming_the_field(two_versions, author, query, field, message):
    v1, _ = two_versions

    response = _client(author).get(f"/library/modules/{v1.module_id}/compare/?{query}")

    assert response.status_code == 400
    html = response.content.decode()
    assert field in html
    assert message in html


def test_a_module_with_one_version_says_there_is_nothing_to_compare(db, author):
    v1 = factories.make_module(author)

    response = _client(author).get(f"/library/modules/{v1.module_id}/compare/")

    assert response.status_code == 200
    assert 'id="compare-single"' in response.content.decode()


def test_the_compare_is_for_library_users_only(two_versions, engine, client):
    v1, _ = two_versions

    assert client.get(f"/library/modules/{v1.module_id}/compare/").status_code == 302
    assert (
        _client(engine).get(f"/library/modules/{v1.module_id}/compare/?a=1&b=2").status_code == 403
    )
    assert _client(engine).get("/library/modules/999999/compare/").status_code == 403
