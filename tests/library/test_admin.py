"""The Django admin: every model renders; reviewed content and evidence stay read-only."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

# Imported for their admin registrations, so the registry below is complete.
import contentapp.urls  # noqa: F401, I001
from content_modules.accounts.models import AuthFailure
from content_modules.affinity.models import (
    HCP,
    AffinityModel,
    EngagementEvent,
    TrainingRequest,
    VersionEmbedding,
)
from content_modules.audit.models import AuditEntry
from content_modules.library.claims import claim_link_create
from content_modules.library.images import image_asset_create
from content_modules.library.models import (
    Brand,
    BrandPolicy,
    Module,
    ModuleVersion,
    ProhibitedPhrase,
    Tag,
    TagKind,
    VersionStatus,
)
from content_modules.library.services import reference_create
from content_modules.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from tests.factories import PASSWORD, force_status, make_module, new_token

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
# Models this file knows how to build: their change page must be tested, never skipped.
BUILT_HERE = {
    "delivery.Recommendation",
    "review.Annotation",
    "review.ExpiryNotice",
    "review.ReferenceCheck",
    "review.Review",
    "review.ReviewTask",
    "review.Signature",
    "accounts.AuthFailure",
    "accounts.ApiToken",
    "affinity.AffinityModel",
    "affinity.EngagementEvent",
    "affinity.HCP",
    "affinity.TrainingRequest",
    "affinity.VersionEmbedding",
    "audit.AuditEntry",
    "auth.Group",
    "auth.User",
    "library.Brand",
    "library.BrandPolicy",
    "library.Channel",
    "library.ClaimLink",
    "library.ImageAsset",
    "library.Market",
    "library.Module",
    "library.ModuleVersion",
    "library.ProhibitedPhrase",
    "library.Reference",
    "library.Tag",
    "webhooks.Webhook",
    "webhooks.WebhookDelivery",
}


def jpeg_upload(name: str = "hero.jpg") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def add_engagement(version: ModuleVersion, hcp: HCP) -> EngagementEvent:
    return EngagementEvent.objects.create(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module=version.module,
        version=version,
        type="opened",
        occurred_at=timezone.now(),
        channel="email",
    )


@pytest.fixture
def populated(db, admin_user, author, medical, django_capture_on_commit_callbacks):
    """At least one row of every model this file knows, built through the real actions."""
    with django_capture_on_commit_callbacks(execute=True):
        asset = image_asset_create(actor=author, upload=jpeg_upload())
    reference = reference_create(
        actor=author, citation="Smith J et al. NEJM 2024;390:1-10", url="https://example.org/s"
    )
    draft = make_module(author, image=asset, references=[reference])
    claim_link_create(
        actor=author,
        version=draft,
        field="body",
        start=0,
        end=len(draft.body),
        reference=reference,
        locator="p. 4",
    )
    approved = make_module(author, title="Approved module")
    force_status(approved, VersionStatus.APPROVED)
    BrandPolicy.objects.create(
        brand=draft.module.brand,
        requires_safety_statement=True,
        safety_phrases="Important safety information",
    )
    ProhibitedPhrase.objects.create(brand=draft.module.brand, phrase="cure", reason="Overclaim")
    hcp = HCP.objects.create(external_id="hcp-0001", specialty="cardiology", segment="high")
    add_engagement(approved, hcp)
    VersionEmbedding.objects.create(
        version=approved,
        model_name="all-MiniLM-L6-v2",
        dim=4,
        vector=np.arange(4, dtype=np.float32).tobytes(),
        text_sha256="0" * 64,
    )
    AffinityModel.objects.create(
        model_version="2026-01-01T00:00:00Z",
        trained_at=timezone.now(),
        artifact=b"\x00" * 128,
        is_active=True,
        metrics={"auc": 0.71},
    )
    TrainingRequest.objects.create(
        requested_by=author,
        queued_at=timezone.now(),
        finished_at=timezone.now(),
        model_version="2026-01-01T00:00:00Z",
        outcome="trained",
    )
    AuthFailure.objects.create(username="mallory", kind=AuthFailure.Kind.LOGIN)
    new_token(author)
    hook = Webhook.objects.create(
        url="https://engine.example.com/hook",
        events=["version.withdrawn"],
        secret="whsec_" + "0" * 48,
        created_by=admin_user,
    )
    WebhookDelivery.objects.create(
        webhook=hook,
        event="version.withdrawn",
        payload={"module": approved.module_id, "version": approved.number},
        status=DeliveryStatus.DEAD,
        attempts=12,
        last_error="answered 503",
    )
    _review_rows(author, medical)
    _recommendation_rows(hcp, approved)
    return {"draft": draft, "approved": approved, "reference": reference, "asset": asset}


def _review_rows(author, medical) -> None:
    """Rows of every review model, made by the review app's own actions."""
    from content_modules.review.models import ReviewTask
    from content_modules.review.services import (
        annotation_create,
        reference_check_mark,
        task_decide,
        version_submit,
        versions_expire,
    )

    reference = reference_create(actor=author, citation="Review reference 2025")
    version = make_module(author, title="In review", references=[reference])
    version_submit(actor=author, module=version.module)
    version.refresh_from_db()
    task = ReviewTask.objects.get(version=version, role="medical")
    reference_check_mark(actor=medical, task=task, reference=reference)
    annotation_create(actor=medical, version=version, field="body", start=0, end=5, text="Source?")
    task_decide(actor=medical, task=task, decision="approve", password=PASSWORD)
    expiring = make_module(author, title="Expiring soon")
    force_status(expiring, VersionStatus.APPROVED, expires_on=timezone.localdate() + timedelta(3))
    versions_expire()


def _recommendation_rows(hcp: HCP, version: ModuleVersion) -> None:
    """A logged recommendation with one item, as the delivery app stores them."""
    from content_modules.delivery.models import Recommendation, RecommendationItem

    recommendation = Recommendation.objects.create(
        hcp=hcp, hcp_external_id=hcp.external_id, request={"channel": "email"}, policy="greedy"
    )
    RecommendationItem.objects.create(
        recommendation=recommendation,
        rank=1,
        module=version.module,
        version=version,
        score=0.42,
        propensity=1.0,
    )


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_and_change_page_of_every_registered_model_render_for_a_superuser(
    admin_client, populated, model
):
    response = admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    # The search box must work too (bad search_fields only fail on use).
    response = admin_client.get(url(model, "changelist"), {"q": "a"})
    assert response.status_code == 200

    obj = model._default_manager.order_by("pk").first()
    if obj is None:
        assert model._meta.label not in BUILT_HERE, f"the fixture built no {model._meta.label}"
        pytest.skip(f"changelist renders; no {model._meta.label} row to show its change page")
    response = admin_client.get(url(model, "change", quote(obj.pk)))
    assert response.status_code == 200
    assert response.context["original"].pk == obj.pk


def test_admin_registers_every_library_and_affinity_model():
    from django.apps import apps

    for app_label in ("library", "affinity"):
        for model in apps.get_app_config(app_label).get_models():
            assert model in admin.site._registry, f"{model._meta.label} has no admin"


# --- Audit data -------------------------------------------------------------


def test_audit_entries_cannot_be_added_changed_or_deleted_through_the_admin(
    admin_client, populated
):
    entry = AuditEntry.objects.order_by("seq").first()
    before = (entry.action, entry.actor_name, entry.entry_hash)

    assert admin_client.get(url(AuditEntry, "add")).status_code == 403
    assert admin_client.post(url(AuditEntry, "add"), {"action": "forged"}).status_code == 403
    change = admin_client.get(url(AuditEntry, "change", entry.pk))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert (
        admin_client.post(url(AuditEntry, "change", entry.pk), {"action": "forged"}).status_code
        == 403
    )
    assert (
        admin_client.post(url(AuditEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403
    )
    changelist = admin_client.get(url(AuditEntry, "changelist"))
    assert b"delete_selected" not in changelist.content
    bulk = admin_client.post(
        url(AuditEntry, "changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)

    entry.refresh_from_db()
    assert (entry.action, entry.actor_name, entry.entry_hash) == before
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


# --- Versions and modules ---------------------------------------------------


def version_form_data(version: ModuleVersion, **overrides) -> dict:
    data = {
        "title": version.title,
        "headline": version.headline,
        "body": version.body,
        "key_message": version.key_message,
        "call_to_action": version.call_to_action,
        "message": version.message_id,
        "themes": [t.pk for t in version.themes.all()],
        "tonality": version.tonality_id,
        "format": version.format_id,
        "channels": [c.pk for c in version.channels.all()],
        "references": [r.pk for r in version.references.all()],
        "image": version.image_id or "",
        "expires_on": version.expires_on.isoformat() if version.expires_on else "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_approved_version_is_view_only_in_the_admin(admin_client, populated):
    approved = populated["approved"]

    page = admin_client.get(url(ModuleVersion, "change", approved.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b'name="title"' not in page.content
    response = admin_client.post(
        url(ModuleVersion, "change", approved.pk),
        version_form_data(approved, title="Sneaky change"),
    )
    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.title == "Approved module"


def test_draft_edited_in_the_admin_goes_through_module_edit(admin_client, admin_user, populated):
    draft = populated["draft"]
    old_hash = draft.content_hash
    page = admin_client.get(url(ModuleVersion, "change", draft.pk))
    assert b'name="title"' in page.content

    response = admin_client.post(
        url(ModuleVersion, "change", draft.pk),
        version_form_data(draft, title="Retitled by an admin"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    draft.refresh_from_db()
    assert draft.title == "Retitled by an admin"
    assert draft.number == 1 and draft.status == VersionStatus.DRAFT
    assert draft.content_hash == draft.compute_content_hash() != old_hash
    assert admin_user in draft.editors.all()
    entry = AuditEntry.objects.filter(action="version.edited", version_id=draft.pk).get()
    assert entry.data["changes"]["title"]["new"] == "Retitled by an admin"
    # The image and the reference survived: the form's m2m save did not run over them.
    assert draft.image_id == populated["asset"].pk
    assert list(draft.references.all()) == [populated["reference"]]


def test_invalid_draft_edit_in_the_admin_shows_the_error_and_writes_nothing(
    admin_client, settings, populated
):
    draft = populated["draft"]
    settings.MODULE_BODY_MAX_CHARS = 50
    audit_count = AuditEntry.objects.count()

    response = admin_client.post(
        url(ModuleVersion, "change", draft.pk),
        version_form_data(draft, body="x" * 51, title="Not saved"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["body"] == ["Body is 51 characters; the limit is 50."]
    draft.refresh_from_db()
    assert draft.title != "Not saved"
    assert AuditEntry.objects.count() == audit_count


def test_draft_edit_with_an_empty_theme_list_is_refused_naming_themes(admin_client, populated):
    draft = populated["draft"]
    data = version_form_data(draft)
    data.pop("themes")
    response = admin_client.post(url(ModuleVersion, "change", draft.pk), data)
    assert response.status_code == 200
    assert "themes" in response.context["adminform"].form.errors
    assert draft.themes.exists()


def test_versions_and_modules_are_neither_added_nor_deleted_in_the_admin(admin_client, populated):
    draft = populated["draft"]
    for model, pk in ((ModuleVersion, draft.pk), (Module, draft.module_id)):
        assert admin_client.get(url(model, "add")).status_code == 403
        assert admin_client.post(url(model, "delete", pk), {"post": "yes"}).status_code == 403
    assert ModuleVersion.objects.filter(pk=draft.pk).exists()


def test_module_page_lists_its_versions_with_links(admin_client, author, populated):
    approved = populated["approved"]
    from content_modules.library.services import module_edit

    v2 = module_edit(actor=author, module=approved.module, changes={"title": "Second"})

    page = admin_client.get(url(Module, "change", approved.module_id))

    assert page.status_code == 200
    assert url(ModuleVersion, "change", approved.pk).encode() in page.content
    assert url(ModuleVersion, "change", v2.pk).encode() in page.content


def changelist_queries(client, model) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url(model, "changelist")).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "model", [Module, ModuleVersion, EngagementEvent, VersionEmbedding], ids=lambda m: m.__name__
)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, author, populated, model):
    hcp = HCP.objects.get(external_id="hcp-0001")

    def add_rows(n: int) -> None:
        for i in range(n):
            version = make_module(author)
            add_engagement(version, hcp)
            VersionEmbedding.objects.create(
                version=version, model_name="m", dim=1, vector=b"\x00" * 4, text_sha256=str(i)
            )

    add_rows(2)
    few = changelist_queries(admin_client, model)
    add_rows(5)
    many = changelist_queries(admin_client, model)
    assert many == few


# --- Vocabulary, references, affinity data ----------------------------------


def test_tag_added_in_the_admin_is_created_by_tag_create_and_its_slug_is_then_read_only(
    admin_client, populated
):
    response = admin_client.post(
        url(Tag, "add"),
        {"kind": TagKind.THEME, "slug": "prevention", "label": "Prevention", "active": "on"},
    )
    assert response.status_code == 302
    tag = Tag.objects.get(kind=TagKind.THEME, slug="prevention")
    assert AuditEntry.objects.filter(action="tag.created", object_id=str(tag.pk)).exists()

    page = admin_client.get(url(Tag, "change", tag.pk))
    assert b'name="label"' in page.content
    assert b'name="slug"' not in page.content
    admin_client.post(url(Tag, "change", tag.pk), {"label": "Disease prevention", "slug": "x"})
    tag.refresh_from_db()
    assert (tag.slug, tag.label) == ("prevention", "Disease prevention")
    assert AuditEntry.objects.filter(action="admin.changed", object_id=str(tag.pk)).exists()


def test_duplicate_tag_in_the_admin_is_a_form_error_not_a_crash(admin_client, populated):
    response = admin_client.post(
        url(Tag, "add"), {"kind": TagKind.THEME, "slug": "outcomes", "label": "Again"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Tag.objects.filter(kind=TagKind.THEME, slug="outcomes").count() == 1


@pytest.mark.parametrize(
    ("roles", "error"),
    [
        ('["medical", "marketing"]', "Unknown review role(s): marketing."),
        ('"medical"', "Give a list of role names"),
    ],
)
def test_brand_review_roles_must_be_known_roles(admin_client, populated, roles, error):
    brand = Brand.objects.get(slug="cardiozen")
    response = admin_client.post(
        url(Brand, "change", brand.pk), {"name": brand.name, "review_roles": roles}
    )
    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["review_roles"])
    brand.refresh_from_db()
    assert brand.review_roles == []


def test_brand_review_roles_set_in_the_admin_are_saved_and_audited(admin_client, populated):
    brand = Brand.objects.get(slug="cardiozen")
    response = admin_client.post(
        url(Brand, "change", brand.pk),
        {"name": brand.name, "review_roles": '["medical", "regulatory", "medical"]'},
    )
    assert response.status_code == 302
    brand.refresh_from_db()
    assert brand.required_review_roles() == ["medical", "regulatory"]
    assert AuditEntry.objects.filter(action="admin.changed", object_id=str(brand.pk)).exists()


def test_reference_added_in_the_admin_is_created_by_reference_create(admin_client, populated):
    from content_modules.library.models import Reference

    response = admin_client.post(
        url(Reference, "add"),
        {"citation": "  Lee K et al. Lancet 2025;405:77-88  ", "url": "https://doi.org/10.1/x"},
    )

    assert response.status_code == 302
    reference = Reference.objects.get(citation="Lee K et al. Lancet 2025;405:77-88")
    assert reference.url == "https://doi.org/10.1/x"
    entry = AuditEntry.objects.get(action="reference.created", object_id=str(reference.pk))
    assert entry.data["citation"] == reference.citation


def test_reference_behind_reviewed_content_is_read_only(admin_client, author, populated):
    reference = reference_create(actor=author, citation="Jones 2023")
    frozen = make_module(author, references=[reference])
    force_status(frozen, VersionStatus.APPROVED)

    response = admin_client.post(
        url(type(reference), "change", reference.pk), {"citation": "Rewritten", "url": ""}
    )
    assert response.status_code == 403
    assert (
        admin_client.post(url(type(reference), "delete", reference.pk), {"post": "yes"}).status_code
        == 403
    )
    reference.refresh_from_db()
    assert reference.citation == "Jones 2023"


def test_hcp_corrected_in_the_admin_leaves_an_audit_entry(admin_client, populated):
    hcp = HCP.objects.get(external_id="hcp-0001")
    response = admin_client.post(
        url(HCP, "change", hcp.pk),
        {
            "external_id": "hcp-0001",
            "specialty": "oncology",
            "segment": "high",
            "region": "",
            "preferred_channel": "",
            "attributes": "{}",
        },
    )
    assert response.status_code == 302
    hcp.refresh_from_db()
    assert hcp.specialty == "oncology"
    entry = AuditEntry.objects.get(action="admin.changed", object_id=str(hcp.pk))
    assert "specialty" in entry.data["fields"]
    assert entry.data["changes"]["specialty"] == {"old": "cardiology", "new": "oncology"}


@pytest.mark.parametrize(
    "model", [EngagementEvent, VersionEmbedding, AffinityModel], ids=lambda m: m.__name__
)
def test_derived_and_evidence_data_are_read_only(admin_client, populated, model):
    obj = model._default_manager.first()
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "change", quote(obj.pk)), {}).status_code == 403
    assert (
        admin_client.post(url(model, "delete", quote(obj.pk)), {"post": "yes"}).status_code == 403
    )
    assert model._default_manager.filter(pk=obj.pk).exists()


def test_affinity_model_page_summarises_the_artifact_instead_of_dumping_it(admin_client, populated):
    model = AffinityModel.objects.get()
    page = admin_client.get(url(AffinityModel, "change", model.pk))
    assert b"128 bytes" in page.content


def test_image_asset_list_shows_a_thumbnail_served_by_the_library(admin_client, populated):
    asset = populated["asset"]
    thumbnail_url = reverse("library:image", args=[asset.pk, "thumbnail"])

    page = admin_client.get(url(type(asset), "changelist"))

    assert f'src="{thumbnail_url}"'.encode() in page.content
    served = admin_client.get(thumbnail_url)
    assert served.status_code == 200
    with Image.open(io.BytesIO(b"".join(served.streaming_content))) as img:
        assert img.format == "JPEG"
        assert max(img.size) <= 240


def test_non_staff_users_cannot_open_the_admin(client, author, populated):
    client.force_login(author)
    response = client.get(url(ModuleVersion, "changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_expired_version_is_view_only(admin_client, populated):
    approved = populated["approved"]
    force_status(approved, VersionStatus.EXPIRED, expires_on=timezone.localdate() - timedelta(1))
    page = admin_client.get(url(ModuleVersion, "change", approved.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
