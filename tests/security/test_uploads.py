"""Uploads never run as active content and are fetched only through role-checked views.

Found by the outside attack: a reference "PDF" named evil.html whose bytes
start %PDF- was stored under its client name and served inline as text/html
(an .svg as image/svg+xml), /media/ served draft images to anonymous users
in the default mode, and API answers linked /media/ directly.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import clear_url_caches, reverse
from PIL import Image

import contentapp.urls
from content_modules.library.images import image_asset_create
from content_modules.library.models import Reference, VersionStatus
from content_modules.library.services import reference_create
from tests.delivery.helpers import approved
from tests.factories import api_client, force_status, make_module, pdf_bytes
from tests.library.test_api_modules import payload

pytestmark = pytest.mark.django_db

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/>'


def stored_files() -> list[str]:
    root = Path(django_settings.MEDIA_ROOT)
    return sorted(
        str(Path(folder, name).relative_to(root))
        for folder, _dirs, names in os.walk(root)
        for name in names
    )


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def register(author, name: str, data: bytes, content_type: str, capture):
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    with capture(execute=True):
        return api_client(author).post(
            "/api/v1/references", {"citation": "Smith 2025", "pdf": upload}, format="multipart"
        )


def assert_pdf_download(response, reference: Reference) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="reference-{reference.pk}.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"


def image_of(author, capture, name: str = "hero.png", content_type: str = "image/png"):
    upload = SimpleUploadedFile(name, png_bytes(), content_type=content_type)
    with capture(execute=True):
        return image_asset_create(actor=author, upload=upload)


def test_reference_pdf_named_evil_html_is_stored_as_pdf_and_served_as_a_download(
    author, django_capture_on_commit_callbacks
):
    # Given a real PDF that is also an HTML page, named evil.html, sent as text/html
    polyglot = pdf_bytes(HTML)

    # When an author registers it
    response = register(
        author, "evil.html", polyglot, "text/html", django_capture_on_commit_callbacks
    )

    # Then it is stored under a name the server chose, with the .pdf extension only
    assert response.status_code == 201, response.json()
    reference = Reference.objects.get(pk=response.json()["id"])
    name = f"references/{hashlib.sha256(polyglot).hexdigest()}.pdf"
    assert reference.pdf.name == name and stored_files() == [name]

    # And the API links the role-checked download, never /media/
    url = response.json()["pdf_url"]
    assert url == f"http://testserver/api/v1/references/{reference.pk}/pdf"

    # And both the API and the page serve it as a PDF attachment that no browser sniffs
    served = api_client(author).get(url)
    assert_pdf_download(served, reference)
    assert body(served) == polyglot
    client = Client()
    client.force_login(author)
    assert_pdf_download(
        client.get(reverse("library:reference_pdf", args=[reference.pk])), reference
    )


def test_a_page_behind_a_pdf_header_is_refused_and_nothing_is_stored(
    author, django_capture_on_commit_callbacks
):
    # Given an HTML page that only starts with %PDF-
    fake = b"%PDF-1.7\n" + HTML

    # When an author registers it as a reference PDF
    response = register(
        author, "evil.html", fake, "application/pdf", django_capture_on_commit_callbacks
    )

    # Then it is a 400 naming the pdf field, and no row or file is left
    assert response.status_code == 400
    assert response.json()["errors"]["pdf"][0].startswith("Not a PDF file")
    assert not Reference.objects.exists()
    assert stored_files() == []


def test_reference_pdf_named_svg_is_served_as_pdf_never_as_svg(
    author, django_capture_on_commit_callbacks
):
    # Given a real PDF carrying an SVG drawing, named evil.svg and sent as image/svg+xml
    polyglot = pdf_bytes(SVG)

    # When it is registered and fetched
    response = register(
        author, "evil.svg", polyglot, "image/svg+xml", django_capture_on_commit_callbacks
    )
    assert response.status_code == 201, response.json()
    reference = Reference.objects.get(pk=response.json()["id"])
    served = api_client(author).get(response.json()["pdf_url"])

    # Then it was stored as .pdf and is served as a PDF download
    assert reference.pdf.name.endswith(".pdf") and "svg" not in reference.pdf.name
    assert_pdf_download(served, reference)


def test_image_named_svg_is_stored_and_served_as_the_format_pillow_decoded(
    author, django_capture_on_commit_callbacks
):
    # Given a PNG uploaded as evil.svg with the SVG content type
    asset = image_of(author, django_capture_on_commit_callbacks, "evil.svg", "image/svg+xml")

    # Then every rendition is stored under its sha256 with the .png extension
    for field in ("image", "web", "thumbnail"):
        name = getattr(asset, field).name
        assert name.endswith(f"/{asset.sha256}.png"), name
    # And it is served as image/png, not sniffed
    served = api_client(author).get(f"/api/v1/images/{asset.pk}/full")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"


def _multipart() -> dict:
    data = payload()
    data["tags"] = json.dumps(data["tags"])
    del data["variant_of"], data["references"]
    return data


@pytest.fixture
def debug_urls(settings):
    """The URL map as the default mode (DEBUG on, no CONTENTAPP_ENV) builds it."""
    settings.DEBUG = True
    clear_url_caches()
    importlib.reload(contentapp.urls)
    yield
    settings.DEBUG = False
    clear_url_caches()
    importlib.reload(contentapp.urls)


def test_anonymous_and_engine_cannot_fetch_a_draft_image(
    author, engine, debug_urls, django_capture_on_commit_callbacks
):
    # Given a draft module with an image
    asset = image_of(author, django_capture_on_commit_callbacks)
    make_module(author, image=asset)
    anonymous = Client()

    # Then no /media/ URL serves it, even in the default (DEBUG) mode
    assert anonymous.get(f"/{django_settings.MEDIA_URL}{asset.web.name}").status_code == 404
    # And the image views refuse anonymous callers
    assert anonymous.get(f"/api/v1/images/{asset.pk}/web").status_code == 401
    page = anonymous.get(reverse("library:image", args=[asset.pk, "web"]))
    assert page.status_code == 302 and page["Location"].startswith(reverse("accounts:login"))
    # And the engine, which sees approved content only, is told it does not exist
    assert api_client(engine).get(f"/api/v1/images/{asset.pk}/web").status_code == 404


def test_engine_fetches_an_approved_image_through_image_url_until_withdrawn(
    author, engine, django_capture_on_commit_callbacks
):
    # Given an approved module with an image
    asset = image_of(author, django_capture_on_commit_callbacks)
    live = approved(author, image=asset)
    engine_client = api_client(engine)

    # When the engine reads the approved content and fetches its image_url
    content = engine_client.get(f"/api/v1/content/{live.module_id}").json()["content"]
    assert content["image_url"] == f"http://testserver/api/v1/images/{asset.pk}/web"
    served = engine_client.get(content["image_url"], HTTP_ACCEPT="image/*")

    # Then it gets the image
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    with asset.web.open("rb") as stored:
        assert body(served) == stored.read()

    # And once the module is withdrawn, the image is no longer the engine's to fetch
    force_status(live, VersionStatus.WITHDRAWN)
    assert engine_client.get(content["image_url"]).status_code == 404


def test_author_sees_their_draft_image_through_the_module_api(
    author, vocabulary, django_capture_on_commit_callbacks
):
    # Given an author who created a draft module with an image
    upload = SimpleUploadedFile("hero.png", png_bytes(), content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):
        created = api_client(author).post(
            "/api/v1/modules", {**_multipart(), "image": upload}, format="multipart"
        )
    assert created.status_code == 201, created.json()

    # When they fetch each rendition the API links
    for key in ("url", "web_url", "thumbnail_url"):
        served = api_client(author).get(created.json()["image"][key])

        # Then they see it
        assert served.status_code == 200, key
        assert served["Content-Type"] == "image/png"
        assert body(served).startswith(b"\x89PNG")


def test_a_reference_stored_under_its_old_client_name_is_still_served_as_a_pdf_download(
    author,
):
    # Given a reference stored before server-chosen names, under the client's name
    reference = reference_create(actor=author, citation="Legacy 2024")
    old_name = "references/2026/11/0123456789ab-evil.html"
    default_storage.save(old_name, ContentFile(pdf_bytes(HTML)))
    Reference.objects.filter(pk=reference.pk).update(pdf=old_name)
    reference.refresh_from_db()

    # When a reviewer's browser or a script fetches it
    served = api_client(author).get(f"/api/v1/references/{reference.pk}/pdf")

    # Then it is still served, as a PDF download
    assert_pdf_download(served, reference)
    assert body(served) == pdf_bytes(HTML)


def test_admin_refuses_a_reference_file_that_is_not_a_pdf(admin_client):
    # When an admin adds a reference with an HTML page that starts %PDF-
    fake = SimpleUploadedFile("evil.html", b"%PDF-1.4\n" + HTML, content_type="text/html")
    response = admin_client.post(
        reverse("admin:library_reference_add"), {"citation": "Evil 2025", "url": "", "pdf": fake}
    )

    # Then the form says why and nothing is stored
    assert response.status_code == 200
    assert b"Not a PDF file" in response.content
    assert not Reference.objects.exists()
    assert stored_files() == []
