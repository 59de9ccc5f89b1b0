"""An image's alt text: written by the author, the headline when blank, frozen once reviewed."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image

from content_modules.audit.actions import AuditAction
from content_modules.audit.models import AuditEntry
from content_modules.library.images import process_image_upload, store_image_asset
from content_modules.library.models import FrozenVersionError, VersionStatus
from content_modules.library.services import module_edit
from tests.delivery.helpers import approved
from tests.factories import PASSWORD, api_client, force_status, make_module

from .test_api_modules import payload

pytestmark = pytest.mark.django_db


def _asset(author):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (31, 95, 191)).save(buffer, "PNG")
    upload = SimpleUploadedFile("chart.png", buffer.getvalue(), content_type="image/png")
    with transaction.atomic():
        return store_image_asset(actor=author, processed=process_image_upload(upload))


def test_api_create_without_alt_text_answers_the_headline_as_the_alt_text(author, vocabulary):
    response = api_client(author).post("/api/v1/modules", payload(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["image_alt"] == ""
    assert data["image_alt_text"] == "Fewer major cardiac events"


def test_api_create_and_patch_write_the_alt_text_and_audit_the_change(author, vocabulary):
    client = api_client(author)
    created = client.post(
        "/api/v1/modules", payload(image_alt="Bar chart of cardiac events"), format="json"
    ).json()
    assert created["image_alt"] == created["image_alt_text"] == "Bar chart of cardiac events"

    patched = client.patch(
        f"/api/v1/modules/{created['id']}", {"image_alt": "Kaplan-Meier curve"}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["image_alt_text"] == "Kaplan-Meier curve"
    edit = AuditEntry.objects.filter(action=AuditAction.VERSION_EDITED).latest("id")
    assert edit.data["changes"]["image_alt"] == {
        "old": "Bar chart of cardiac events",
        "new": "Kaplan-Meier curve",
    }

    # Clearing it falls back to the headline again, and the audit says it was removed
    cleared = client.patch(f"/api/v1/modules/{created['id']}", {"image_alt": ""}, format="json")
    assert cleared.json()["image_alt"] == ""
    assert cleared.json()["image_alt_text"] == "Fewer major cardiac events"
    edit = AuditEntry.objects.filter(action=AuditAction.VERSION_EDITED).latest("id")
    assert edit.data["changes"]["image_alt"] == {"old": "Kaplan-Meier curve", "new": None}


def test_api_alt_text_over_300_characters_is_400_naming_the_field(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules", payload(image_alt="x" * 301), format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert "image_alt" in body["errors"]
    assert not AuditEntry.objects.filter(action=AuditAction.MODULE_CREATED).exists()


def test_alt_text_is_part_of_the_signed_content_only_when_written(author):
    # A blank alt text leaves the hash as it was before the field existed, so
    # every signature made then still matches its version.
    version = make_module(author)
    assert "image_alt" not in version.content_dict()
    before = version.content_hash
    edited = module_edit(actor=author, module=version.module, changes={"image_alt": "A chart"})
    assert edited.content_dict()["image_alt"] == "A chart"
    assert edited.content_hash != before


def test_alt_text_of_an_approved_version_is_frozen(author):
    version = make_module(author)
    force_status(version, VersionStatus.APPROVED)
    version.image_alt = "Changed after approval"
    with pytest.raises(FrozenVersionError):
        version.save()


def test_approved_content_carries_the_alt_text_for_the_engine(author, engine):
    with_alt = approved(author, image=_asset(author), image_alt="Chart: 24% fewer events")
    default = approved(author, image=_asset(author), headline="Fewer cardiac events")
    no_image = approved(author)
    client = api_client(engine)
    for version, expected in (
        (with_alt, "Chart: 24% fewer events"),
        (default, "Fewer cardiac events"),
        (no_image, None),
    ):
        content = client.get(f"/api/v1/content/{version.module_id}").json()["content"]
        assert content["image_alt"] == expected


def test_module_form_saves_alt_text_and_shows_it_on_every_image(client, author):
    version = make_module(author, image=_asset(author), headline="Fewer heart attacks")
    assert client.login(username=author.username, password=PASSWORD)
    page = client.get(f"/library/modules/{version.module_id}/").content.decode()
    assert 'alt="Fewer heart attacks"' in page

    form = client.get(f"/library/modules/{version.module_id}/edit/").context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["expires_on"] = data["expires_on"].isoformat()
    data["image_alt"] = 'Chart "A" <script>'
    response = client.post(f"/library/modules/{version.module_id}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    version.refresh_from_db()
    assert version.image_alt == 'Chart "A" <script>'
    page = client.get(f"/library/modules/{version.module_id}/").content.decode()
    assert 'alt="Chart &quot;A&quot; &lt;script&gt;"' in page
