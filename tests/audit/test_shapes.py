"""Every audit action's data has one registered shape, checked at write time and in the schema."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.accounts.roles import Role
from content_modules.accounts.tokens import token_issue, token_revoke
from content_modules.audit.actions import AuditAction
from content_modules.audit.models import AuditChainHead, AuditEntry
from content_modules.audit.services import audit_record, audit_verify
from content_modules.audit.shapes import SHAPES, AuditDataError, component_suffix, data_problems
from content_modules.errors import DomainError
from content_modules.library.models import TagKind, VersionStatus
from content_modules.library.services import module_edit, reference_create, tag_create
from content_modules.review.services import (
    annotation_create,
    annotation_resolve,
    module_withdraw,
    review_recall,
    task_decide,
    task_reassign,
    tasks_remind_overdue,
    versions_expire,
)
from tests.factories import PASSWORD, api_client, force_status, make_module, make_user
from tests.review.helpers import approve_all, decide, send_back, submit, task_for

pytestmark = pytest.mark.django_db


def test_every_audit_action_has_a_registered_data_shape():
    # An action added to the enum without a shape fails here (and raises at write time).
    assert set(SHAPES) == set(AuditAction)


def test_an_unknown_key_is_refused_at_write_time_and_nothing_is_written(author):
    head_before = AuditChainHead.objects.filter(pk=1).values_list("last_seq", flat=True).first()

    with pytest.raises(AuditDataError, match=r"data\.colour: not a key of this action's data"):
        audit_record(
            actor=author,
            action=AuditAction.TAG_CREATED,
            object_type="library.tag",
            object_id=1,
            data={"kind": "theme", "slug": "x", "colour": "red"},
        )

    assert not AuditEntry.objects.filter(action=AuditAction.TAG_CREATED).exists()
    assert (
        AuditChainHead.objects.filter(pk=1).values_list("last_seq", flat=True).first()
        == head_before
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"kind": "theme", "slug": 3}, r"data\.slug: int where string is expected"),
        ({"kind": "theme"}, r"data\.slug: missing"),
        ({"kind": None, "slug": "x"}, r"data\.kind: null where string is expected"),
    ],
)
def test_a_wrong_type_or_a_missing_key_is_refused_at_write_time(author, data, problem):
    with pytest.raises(AuditDataError, match=problem):
        audit_record(
            actor=author, action=AuditAction.TAG_CREATED, object_type="t", object_id=1, data=data
        )
    assert not AuditEntry.objects.exists()


def test_nested_values_are_checked_too(author):
    with pytest.raises(AuditDataError, match=r"data\.roles\.1: int where string is expected"):
        audit_record(
            actor=author,
            action=AuditAction.VERSION_SUBMITTED,
            object_type="library.moduleversion",
            object_id=1,
            data={
                "version": 1,
                "from": "draft",
                "to": "in_review",
                "review": 1,
                "round": 1,
                "roles": ["medical", 2],
                "due_at": timezone.now(),
                "content_hash": "0" * 64,
            },
        )
    with pytest.raises(AuditDataError, match=r"data\.due_at: 'soon' is not a date-time"):
        audit_record(
            actor=author,
            action=AuditAction.TASK_REMINDED,
            object_type="review.reviewtask",
            object_id=1,
            data={"task": 1, "role": "legal", "review": 1, "due_at": "soon", "to": []},
        )


def test_a_key_only_older_entries_carry_is_refused_on_new_ones(author):
    old_shape = {"task": 1, "role": "legal", "review": 1, "because": "rejected", "decided_task": 2}
    with pytest.raises(AuditDataError, match=r"data\.decided_task: not a key"):
        audit_record(
            actor=author,
            action=AuditAction.TASK_CANCELLED,
            object_type="review.reviewtask",
            object_id=1,
            data=old_shape,
        )
    # ... while it is one of the shapes a stored entry may have.
    assert data_problems(AuditAction.TASK_CANCELLED, old_shape, stored=True) == []


def test_in_production_a_mismatch_is_written_anyway_and_logged(author, settings, caplog):
    # A compliance trail must not lose an entry over the shape of its details.
    settings.AUDIT_DATA_STRICT = False
    with caplog.at_level(logging.ERROR, logger="content_modules.audit.services"):
        entry = audit_record(
            actor=author,
            action=AuditAction.TAG_CREATED,
            object_type="library.tag",
            object_id=1,
            data={"kind": "theme", "slug": 3},
        )

    assert AuditEntry.objects.get(pk=entry.pk).data == {"kind": "theme", "slug": 3}
    assert audit_verify().ok
    assert "audit tag.created data does not match its shape: data.slug: int" in caplog.text


def test_the_real_flows_write_data_that_matches_its_shape(author, medical, legal, regulatory):
    admin = make_user(Role.ADMIN)
    # Content: a reference, a tag, a module, a draft edit
    reference = reference_create(actor=author, citation="Smith J. NEJM 2025;392:101.")
    tag_create(actor=admin, kind=TagKind.THEME, slug="mortality", label="Mortality")
    v1 = make_module(author, references=[reference])
    module_edit(actor=author, module=v1.module, changes={"headline": "Fewer events, edited"})
    # Review: submit, comment, resolve, a failed signature, reassignment, approvals
    submit(v1)
    note = annotation_create(
        actor=medical, version=v1, field="headline", start=0, end=5, text="Source?"
    )
    annotation_resolve(actor=author, annotation=note)
    annotation_create(actor=legal, version=v1, field="key_message", start=0, end=9, text="Cite.")
    with pytest.raises(DomainError):
        task_decide(actor=legal, task=task_for(v1, "legal"), decision="approve", password="nope")
    task_reassign(actor=admin, task=task_for(v1, "legal"), assignee=legal)
    approve_all(v1, medical, legal, regulatory)
    # A new version (its submit carries the open comment over) supersedes it; withdrawal
    v2 = module_edit(actor=author, module=v1.module, changes={"body": "Second text."})
    approve_all(v2, medical, legal, regulatory)
    module_withdraw(actor=medical, module=v2.module, reason="Safety update", password=PASSWORD)
    # Rounds that close otherwise: changes requested, rejected, recalled
    v3 = make_module(author)
    submit(v3)
    send_back(v3, "legal", legal, reviewers={"medical": medical, "regulatory": regulatory})
    v4 = make_module(author)
    submit(v4)
    send_back(v4, "medical", medical, "reject", reviewers={"legal": legal})
    v5 = make_module(author)
    submit(v5)
    decide(v5, "medical", medical)
    review_recall(actor=author, module=v5.module, reason="Wrong claim")
    # Scheduled jobs: overdue reminders, expiry notices and expiry
    v6 = make_module(author)
    submit(v6)
    tasks_remind_overdue(now=timezone.now() + timedelta(days=30))
    v7 = make_module(author)
    force_status(v7, VersionStatus.APPROVED, expires_on=timezone.localdate() + timedelta(days=3))
    v8 = make_module(author)
    force_status(v8, VersionStatus.APPROVED, expires_on=timezone.localdate() - timedelta(days=1))
    versions_expire()
    # Tokens
    token, _ = token_issue(user=author, name="ci", expires_in_days=30, scopes=["content:read"])
    token_revoke(actor=author, token_id=token.pk)

    entries = list(AuditEntry.objects.order_by("seq"))
    written = {entry.action for entry in entries}
    assert written >= {
        AuditAction.REFERENCE_CREATED,
        AuditAction.TAG_CREATED,
        AuditAction.MODULE_CREATED,
        AuditAction.VERSION_EDITED,
        AuditAction.VERSION_CREATED,
        AuditAction.VERSION_SUBMITTED,
        AuditAction.ANNOTATION_CREATED,
        AuditAction.ANNOTATION_RESOLVED,
        AuditAction.ANNOTATIONS_CARRIED_OVER,
        AuditAction.SIGNATURE_FAILED,
        AuditAction.TASK_REASSIGNED,
        AuditAction.REFERENCE_CHECKED,
        AuditAction.SIGNATURE_APPLIED,
        AuditAction.TASK_DECIDED,
        AuditAction.VERSION_APPROVED,
        AuditAction.VERSION_SUPERSEDED,
        AuditAction.VERSION_WITHDRAWN,
        AuditAction.VERSION_CHANGES_REQUESTED,
        AuditAction.VERSION_REJECTED,
        AuditAction.TASK_CANCELLED,
        AuditAction.REVIEW_RECALLED,
        AuditAction.TASK_REMINDED,
        AuditAction.VERSION_EXPIRY_NOTICE_SENT,
        AuditAction.VERSION_EXPIRED,
        AuditAction.TOKEN_ISSUED,
        AuditAction.TOKEN_REVOKED,
    }
    for entry in entries:  # as written now, and as the API schema describes stored entries
        assert data_problems(AuditAction(entry.action), entry.data) == [], entry
        assert data_problems(AuditAction(entry.action), entry.data, stored=True) == [], entry
    assert audit_verify().ok


# --- the API schema ----------------------------------------------------------------------------


@pytest.fixture
def schema(client):
    answer = client.get("/api/schema/?format=json")
    assert answer.status_code == 200
    return answer.json()


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_the_schema_types_audit_entries_by_action(schema):
    components = schema["components"]["schemas"]
    audit_list = schema["paths"]["/api/v1/modules/{id}/audit"]["get"]["responses"]["200"]
    page = _resolve(schema, audit_list["content"]["application/json"]["schema"])
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/AuditEntry"}

    entry = components["AuditEntry"]
    assert "properties" not in entry  # no longer one entry with a free ``data`` object
    assert entry["discriminator"]["propertyName"] == "action"
    assert set(entry["discriminator"]["mapping"]) == set(AuditAction.values)
    assert len(entry["oneOf"]) == len(AuditAction)
    for action in AuditAction:
        one = components[f"AuditEntry{component_suffix(action)}"]
        assert one["properties"]["action"] == {"type": "string", "enum": [action.value]}
        data = _resolve(schema, one["properties"]["data"])
        assert data["type"] == "object"
        assert data["additionalProperties"] is False, action
        for name, prop in data["properties"].items():
            prop = _resolve(schema, prop)
            assert prop.get("type"), f"{action}: data.{name} is untyped"
    submitted = components["AuditDataVersionSubmitted"]
    assert submitted["properties"]["due_at"] == {"type": "string", "format": "date-time"}
    assert set(submitted["required"]) >= {"version", "from", "to", "review", "roles"}


def _check_against_schema(schema, node, value, where="data"):
    """Hold a served value against the served schema (the subset these components use)."""
    node = _resolve(schema, node)
    kind = node.get("type")
    if kind is None or (value is None and node.get("nullable")):
        return
    expected = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}
    assert isinstance(value, expected[kind]), f"{where}: {value!r} is not {kind}"
    if kind == "array":
        for i, item in enumerate(value):
            _check_against_schema(schema, node["items"], item, f"{where}.{i}")
    elif kind == "object":
        properties = node.get("properties", {})
        for name in node.get("required", []):
            assert name in value, f"{where}.{name} is required"
        for name, item in value.items():
            if name in properties:
                _check_against_schema(schema, properties[name], item, f"{where}.{name}")
            else:
                extra = node.get("additionalProperties", True)
                assert extra is not False, f"{where}.{name} is not in the schema"
                if isinstance(extra, dict):
                    _check_against_schema(schema, extra, item, f"{where}.{name}")


def test_old_shapes_are_still_served_and_match_the_schema(
    schema, author, medical, legal, regulatory, settings
):
    # Given a module's real trail plus entries in the shapes earlier code wrote
    version = make_module(author)
    approve_all(version, medical, legal, regulatory)
    settings.AUDIT_DATA_STRICT = False  # as production would write them, logging the mismatch
    old = {
        AuditAction.VERSION_REJECTED: {
            "version": 1,
            "from": "in_review",
            "to": "rejected",
            "review": 1,
            "by_role": "legal",
            "comment": "No.",
            "cancelled_tasks": [3],
        },
        AuditAction.TASK_CANCELLED: {
            "task": 1,
            "role": "legal",
            "review": 1,
            "because": "rejected",
            "decided_task": 2,
        },
        AuditAction.TOKEN_ISSUED: {},
    }
    for action, data in old.items():
        audit_record(
            actor=None,
            action=action,
            object_type="old",
            object_id=1,
            module_id=version.module_id,
            data=data,
        )

    # When the API serves the module's trail
    answer = api_client(author).get(f"/api/v1/modules/{version.module_id}/audit?page_size=100")

    # Then every entry, old or new, has its action's shape in the schema
    assert answer.status_code == 200, answer.content
    served = answer.json()["results"]
    assert {e["action"] for e in served} >= {a.value for a in old} | {"version.approved"}
    components = schema["components"]["schemas"]
    for entry in served:
        one = components[f"AuditEntry{component_suffix(AuditAction(entry['action']))}"]
        assert set(entry) == set(one["properties"])
        _check_against_schema(schema, one["properties"]["data"], entry["data"])
    assert [e["data"] for e in served if e["object_type"] == "old"] == list(old.values())
