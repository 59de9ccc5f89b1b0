"""The module endpoints of the authoring API: create, read, list, edit, history."""

from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.audit.models import AuditEntry
from content_modules.library.models import Module, ModuleVersion, Reference, VersionStatus
from tests.factories import api_client, force_status, make_module, make_user


def payload(**overrides) -> dict:
    """A valid JSON body for POST /api/v1/modules."""
    body = {
        "title": "CardioZen outcomes",
        "headline": "Fewer major cardiac events",
        "body": "In the pivotal trial, patients on CardioZen had fewer major cardiac events.",
        "key_message": "CardioZen reduced major cardiac events by 24% versus placebo.",
        "call_to_action": "Read the full study",
        "brand": "cardiozen",
        "market": "UK",
        "channels": ["email", "web"],
        "tags": {
            "message": "efficacy",
            "theme": ["outcomes", "adherence"],
            "tonality": "clinical",
            "format": "text",
        },
        "references": [],
        "expires_on": (timezone.localdate() + timedelta(days=200)).isoformat(),
        "variant_of": None,
    }
    body.update(overrides)
    return body


@pytest.mark.django_db
def test_author_creates_a_module_as_draft_version_one(author, vocabulary):
    reference = Reference.objects.create(citation="Smith 2025", created_by=author)

    response = api_client(author).post(
        "/api/v1/modules", payload(references=[reference.pk]), format="json"
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    module = Module.objects.get(pk=data["id"])
    assert response["Location"] == f"http://testserver/api/v1/modules/{module.pk}"
    version = module.latest
    assert data["version"] == 1
    assert data["status"] == "draft"
    assert data["brand"] == "cardiozen" and data["market"] == "UK"
    assert data["title"] == "CardioZen outcomes"
    assert data["tags"] == {
        "message": "efficacy",
        "theme": ["adherence", "outcomes"],
        "tonality": "clinical",
        "format": "text",
    }
    assert data["channels"] == ["email", "web"]
    assert data["references"] == [reference.pk]
    assert data["content_hash"] == version.compute_content_hash()
    assert data["image"] is None
    assert data["created_by"] == author.username
    assert data["approved_version"] is None
    assert data["variant_of"] is None
    assert version.status == VersionStatus.DRAFT
    assert AuditEntry.objects.filter(module_id=module.pk, action="module.created").exists()


@pytest.mark.django_db
def test_create_without_optional_fields_uses_empty_call_to_action_and_no_expiry(author, vocabulary):
    body = payload()
    for key in ("call_to_action", "references", "expires_on", "variant_of"):
        body.pop(key)

    response = api_client(author).post("/api/v1/modules", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["call_to_action"] == ""
    assert response.json()["expires_on"] is None
    assert response.json()["references"] == []


@pytest.mark.django_db
def test_variant_of_links_a_new_module_to_its_family(author, vocabulary):
    root = make_module(author).module

    response = api_client(author).post(
        "/api/v1/modules",
        payload(variant_of=root.pk, tags={**payload()["tags"], "tonality": "empathetic"}),
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["variant_of"] == root.pk
    assert Module.objects.get(pk=response.json()["id"]).variant_of == root


@pytest.mark.django_db
def test_get_module_answers_its_newest_version_and_approved_number(author, medical):
    approved = make_module(author, title="Approved title")
    force_status(approved, VersionStatus.APPROVED)
    api_client(author).patch(
        f"/api/v1/modules/{approved.module_id}", {"title": "Draft title"}, format="json"
    )

    response = api_client(medical).get(f"/api/v1/modules/{approved.module_id}")

    assert response.status_code == 200
    data = response.json()
    assert data["version"] == 2 and data["status"] == "draft"
    assert data["title"] == "Draft title"
    assert data["approved_version"] == 1


@pytest.mark.django_db
def test_get_unknown_module_is_404(author):
    response = api_client(author).get("/api/v1/modules/999999")

    assert response.status_code == 404
    assert "errors" in response.json()


@pytest.mark.django_db
def test_patch_edits_the_draft_in_place(author):
    version = make_module(author, headline="Old headline")

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"headline": "New headline", "tags": {"tonality": "empathetic"}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["version"] == 1 and data["status"] == "draft"
    assert data["headline"] == "New headline"
    assert data["tags"]["tonality"] == "empathetic"
    assert data["tags"]["message"] == "efficacy"  # untouched tags stay
    version.refresh_from_db()
    assert version.headline == "New headline"
    assert version.tonality.slug == "empathetic"
    assert data["content_hash"] == version.compute_content_hash()
    assert ModuleVersion.objects.filter(module_id=version.module_id).count() == 1


@pytest.mark.django_db
def test_patch_of_approved_module_creates_next_draft_and_keeps_approved_version(author):
    approved = make_module(author, body="Approved body")
    force_status(approved, VersionStatus.APPROVED)

    response = api_client(author).patch(
        f"/api/v1/modules/{approved.module_id}",
        {"body": "A new body", "channels": ["web"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["version"] == 2 and data["status"] == "draft"
    assert data["body"] == "A new body"
    assert data["channels"] == ["web"]
    assert data["approved_version"] == 1
    approved.refresh_from_db()
    assert approved.status == VersionStatus.APPROVED
    assert approved.body == "Approved body"
    assert sorted(c.slug for c in approved.channels.all()) == ["email", "web"]


@pytest.mark.django_db
def test_patch_with_nothing_to_change_is_400(author):
    version = make_module(author)

    response = api_client(author).patch(f"/api/v1/modules/{version.module_id}", {}, format="json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


@pytest.mark.django_db
def test_patch_cannot_move_a_module_to_another_brand(author):
    version = make_module(author)

    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}", {"brand": "neurolift"}, format="json"
    )

    assert response.status_code == 400
    assert "brand" in response.json()["errors"]
    assert Module.objects.get(pk=version.module_id).brand.slug == "cardiozen"


@pytest.mark.django_db
def test_another_author_who_edited_the_module_may_edit_it(author, other_author, admin_user):
    version = make_module(author)
    # An admin hands the draft over: the editor becomes one of the module's authors.
    version.editors.add(other_author)

    response = api_client(other_author).patch(
        f"/api/v1/modules/{version.module_id}", {"title": "Edited by a co-author"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["title"] == "Edited by a co-author"


@pytest.mark.django_db
def test_admin_may_edit_any_module(author, admin_user):
    version = make_module(author)

    response = api_client(admin_user).patch(
        f"/api/v1/modules/{version.module_id}", {"title": "Admin fix"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["title"] == "Admin fix"


@pytest.mark.django_db
def test_versions_lists_every_version_newest_first(author, legal):
    first = make_module(author, title="First words")
    force_status(first, VersionStatus.APPROVED)
    api_client(author).patch(
        f"/api/v1/modules/{first.module_id}", {"title": "Second words"}, format="json"
    )

    response = api_client(legal).get(f"/api/v1/modules/{first.module_id}/versions")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(v["version"], v["status"], v["title"]) for v in results] == [
        (2, "draft", "Second words"),
        (1, "approved", "First words"),
    ]
    assert all(v["approved_version"] == 1 for v in results)
    assert response.json()["count"] == 2


@pytest.mark.django_db
def test_versions_of_unknown_module_is_404(author):
    assert api_client(author).get("/api/v1/modules/424242/versions").status_code == 404


@pytest.mark.django_db
def test_audit_shows_the_module_history_in_order(author):
    version = make_module(author)
    other = make_module(author)
    api_client(author).patch(
        f"/api/v1/modules/{version.module_id}", {"title": "Renamed"}, format="json"
    )

    response = api_client(author).get(f"/api/v1/modules/{version.module_id}/audit")

    assert response.status_code == 200
    entries = response.json()["results"]
    assert [e["action"] for e in entries] == ["module.created", "version.edited"]
    assert all(e["module_id"] == version.module_id for e in entries)
    assert entries[0]["seq"] < entries[1]["seq"]
    assert entries[1]["actor"] == author.username
    assert entries[1]["data"]["changes"]["title"]["new"] == "Renamed"
    assert other.module_id not in {e["module_id"] for e in entries}


@pytest.mark.django_db
def test_audit_of_unknown_module_is_404(author):
    assert api_client(author).get("/api/v1/modules/424242/audit").status_code == 404


@pytest.mark.django_db
def test_a_reviewer_sees_modules_of_every_author(author, other_author, regulatory):
    mine = make_module(author)
    theirs = make_module(other_author)

    response = api_client(regulatory).get("/api/v1/modules")

    assert response.status_code == 200
    ids = {m["id"] for m in response.json()["results"]}
    assert {mine.module_id, theirs.module_id} <= ids


@pytest.mark.django_db
def test_created_by_comes_from_a_new_user_each_time(vocabulary):
    # Two authors: each create shows its own author, never a cached one.
    first, second = make_user("author"), make_user("author")
    a = api_client(first).post("/api/v1/modules", payload(), format="json").json()
    b = api_client(second).post("/api/v1/modules", payload(), format="json").json()

    assert (a["created_by"], b["created_by"]) == (first.username, second.username)


@pytest.mark.django_db
def test_render_version_shows_the_given_version_not_the_newest(author, rf):
    from content_modules.library.api import render_version
    from content_modules.library.services import module_edit

    approved = make_module(author, title="Approved words")
    force_status(approved, VersionStatus.APPROVED)
    module_edit(actor=author, module=approved.module, changes={"title": "Draft words"})

    data = render_version(rf.get("/"), approved)

    assert (data["version"], data["status"], data["title"]) == (1, "approved", "Approved words")
    assert data["approved_version"] == 1
