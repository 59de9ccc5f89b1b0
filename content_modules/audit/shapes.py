"""The shape of ``AuditEntry.data`` for every audit action, written down once.

``SHAPES`` maps each ``AuditAction`` to the keys its entries carry, each with a
JSON type (an OpenAPI 3.0 schema). Two readers use it:

- ``audit_record`` checks an entry's data against its action's shape before it
  writes (``data_problems``): an unknown key, a missing key or a wrong type is a
  bug in the caller. Outside production it raises ``AuditDataError`` and nothing
  is written; in production (``AUDIT_DATA_STRICT`` off) the entry is written as
  given and the problems are logged as an error: a compliance trail never drops
  an entry because its details are shaped wrongly.
- the OpenAPI schema (``schema_components``, used by ``contentapp.schema``): one
  entry component per action, discriminated by ``action``, whose ``data`` is
  that action's typed component.

Entries written by earlier code stay as they were (the rows are append-only and
hashed), so the schema describes every shape an action has had, not only
today's: a key that newer code added (``Key(added_later=True)``) is required
when writing but optional when reading, and a key that only older entries carry
(``Key(legacy=True)``) is refused when writing and documented when reading.
Values that come from choices (statuses, roles) are plain strings, not enums,
so an entry written under an older set of choices still parses in a generated
client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .actions import AuditAction

Schema = dict[str, Any]
REF = "#/components/schemas/"


class AuditDataError(ValueError):
    """An audit entry's data does not match its action's registered shape."""


# --- JSON types (OpenAPI 3.0 schemas) --------------------------------------------------------

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}
ANY: Schema = {}  # any JSON value (a changed field's old or new value)


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def list_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def map_of(values: Schema, description: str) -> Schema:
    return {"type": "object", "additionalProperties": values, "description": description}


def ref(name: str) -> Schema:
    return {"$ref": REF + name}


def described(schema: Schema, text: str) -> Schema:
    return {**schema, "description": text}


# Nested objects shared by several actions, as components of their own.
COMPONENTS: dict[str, Schema] = {
    "AuditFieldChange": {
        "type": "object",
        "description": "One changed field: its value before and after (any JSON value).",
        "properties": {"old": ANY, "new": ANY},
        "required": ["old", "new"],
        "additionalProperties": False,
    },
    "AuditVersionContent": {
        "type": "object",
        "description": "Everything that was reviewed in a version (ModuleVersion.content_dict).",
        "properties": {
            "title": STR,
            "headline": STR,
            "body": STR,
            "key_message": STR,
            "call_to_action": STR,
            "message": described(STR, "Tag slug."),
            "themes": described(list_of(STR), "Tag slugs."),
            "tonality": described(STR, "Tag slug."),
            "format": described(STR, "Tag slug."),
            "channels": described(list_of(STR), "Channel slugs."),
            "references": described(list_of(INT), "Reference ids."),
            "image": described(nullable(STR), "The image's sha256, or null."),
            "image_alt": described(
                STR, "The image's alt text, present only when the author wrote one."
            ),
            "expires_on": nullable(DATE),
            "brand": described(STR, "Brand slug."),
            "market": described(STR, "Market code."),
        },
        "required": [
            "title",
            "headline",
            "body",
            "key_message",
            "call_to_action",
            "message",
            "themes",
            "tonality",
            "format",
            "channels",
            "references",
            "image",
            "expires_on",
            "brand",
            "market",
        ],
        "additionalProperties": False,
    },
}

CHANGES = map_of(ref("AuditFieldChange"), "Changed fields by name.")
STATUS = described(STR, "A version status (draft, in_review, approved, ...).")
ROLE = described(STR, "A review role (medical, legal, regulatory).")


@dataclass(frozen=True)
class Key:
    """One key of an action's data.

    ``required``: every entry written now carries it. ``added_later``: written
    now, but entries from before it was added lack it, so a reader may not
    count on it. ``legacy``: only entries written by earlier code carry it; new
    entries may not.
    """

    schema: Schema
    required: bool = True
    added_later: bool = False
    legacy: bool = False
    doc: str = ""

    def read_schema(self) -> Schema:
        schema = dict(self.schema)
        notes = [n for n in (schema.pop("description", ""), self.doc) if n]
        if self.legacy:
            notes.append("Only on entries written by earlier code; no longer written.")
        elif self.added_later:
            notes.append("Absent from entries written before it was added.")
        if notes:
            schema["description"] = " ".join(notes)
        return schema


def k(schema: Schema, doc: str = "", **flags: bool) -> Key:
    return Key(schema, doc=doc, **flags)


@dataclass(frozen=True)
class Shape:
    """The keys of one action's data."""

    keys: dict[str, Key] = field(default_factory=dict)
    doc: str = ""

    def write_schema(self) -> Schema:
        """What a new entry must carry (validated at write time)."""
        current = {name: key for name, key in self.keys.items() if not key.legacy}
        return {
            "type": "object",
            "properties": {name: key.schema for name, key in current.items()},
            "required": [name for name, key in current.items() if key.required],
            "additionalProperties": False,
        }

    def read_schema(self, action: AuditAction) -> Schema:
        """Every shape this action's entries have had (the API schema)."""
        schema: Schema = {
            "type": "object",
            "description": f"The data of a `{action.value}` entry ({action.label})."
            + (f" {self.doc}" if self.doc else ""),
            "properties": {name: key.read_schema() for name, key in self.keys.items()},
            "additionalProperties": False,
        }
        required = [
            name
            for name, key in self.keys.items()
            if key.required and not key.added_later and not key.legacy
        ]
        if required:
            schema["required"] = required
        return schema


def shape(doc: str = "", /, **keys: Key) -> Shape:
    return Shape(keys=keys, doc=doc)


# --- pieces several actions share -------------------------------------------------------------

TASK = {
    "task": k(INT, "The review task's id."),
    "role": k(ROLE),
    "review": k(INT, "The review round's id."),
}


def transition(**extra: Key) -> Shape:
    """A ``version.<status>`` entry: the version moved from one status to another."""
    return shape(
        "Written when a version's status changes.",
        version=k(INT, "The version's number within its module."),
        **{"from": k(STATUS), "to": k(STATUS)},
        **extra,
    )


def round_closed() -> Shape:
    """``version.changes_requested`` and ``version.rejected``: a review round closed."""
    return transition(
        review=k(INT, "The review round's id."),
        round=k(INT, "The round's number.", added_later=True),
        decisions=k(map_of(STR, "Each decided role's decision."), added_later=True),
        comments=k(map_of(STR, "Each role's comment, where it left one."), added_later=True),
        recalled=k(BOOL, "Present (true) when the round was recalled.", required=False),
        reason=k(STR, "The recall's reason.", required=False),
        cancelled_tasks=k(list_of(INT), "Tasks cancelled as the round closed.", required=False),
        by_role=k(ROLE, "The role whose decision closed the round.", legacy=True),
        comment=k(STR, "That role's comment.", legacy=True),
    )


CLAIM_LINK = {
    "version": k(INT, "The version's number within its module."),
    "field": k(STR),
    "start": k(INT),
    "end": k(INT),
    "quoted_text": k(STR, "The claim's text."),
    "reference": k(INT, "The reference's id."),
    "locator": k(STR, "Where in the reference (page, table...)."),
}

ADMIN = {
    "model": k(STR, "The model's label, e.g. library.tag."),
    "repr": k(STR, "The row as text (at most 200 characters)."),
}


SHAPES: dict[AuditAction, Shape] = {
    # Content (library)
    AuditAction.MODULE_CREATED: shape(
        version=k(INT, "Always 1."),
        status=k(STATUS),
        content=k(ref("AuditVersionContent")),
    ),
    AuditAction.VERSION_CREATED: shape(
        version=k(INT),
        based_on=k(INT, "The number of the version it was copied from."),
        based_on_status=k(STATUS),
        changes=k(CHANGES),
    ),
    AuditAction.VERSION_EDITED: shape(version=k(INT), changes=k(CHANGES)),
    AuditAction.IMAGE_UPLOADED: shape(
        sha256=k(STR),
        format=k(STR, "jpeg, png or webp."),
        width=k(INT),
        height=k(INT),
        original_name=k(STR),
    ),
    AuditAction.REFERENCE_CREATED: shape(
        citation=k(STR),
        doi=k(STR, "Normalised DOI, or empty.", added_later=True),
        url=k(STR),
        pdf=k(BOOL, "Whether a PDF was attached."),
        pdf_sha256=k(nullable(STR)),
    ),
    AuditAction.TAG_CREATED: shape(kind=k(STR), slug=k(STR)),
    AuditAction.CLAIM_LINK_CREATED: shape(**CLAIM_LINK),
    AuditAction.CLAIM_LINK_DELETED: shape(**CLAIM_LINK),
    AuditAction.CLAIM_LINKS_CARRIED_OVER: shape(
        from_version=k(INT, "The number of the version the links came from."),
        to_version=k(INT),
        carried=k(map_of(list_of(INT), "Each carried link's id (key) and its [start, end].")),
        dropped=k(map_of(STR, "Each dropped link's id (key) and why it was dropped.")),
    ),
    # Version life cycle
    AuditAction.VERSION_SUBMITTED: transition(
        review=k(INT, "The review round's id."),
        round=k(INT),
        roles=k(list_of(ROLE), "The roles that must review."),
        due_at=k(DATETIME),
        content_hash=k(STR),
    ),
    AuditAction.VERSION_APPROVED: transition(
        review=k(INT, "The review round's id."),
        content_hash=k(STR, "The hash every approval was signed on."),
        signatures=k(list_of(INT), "The approving signatures' ids."),
    ),
    AuditAction.VERSION_CHANGES_REQUESTED: round_closed(),
    AuditAction.VERSION_REJECTED: round_closed(),
    AuditAction.VERSION_SUPERSEDED: transition(
        superseded_by=k(INT, "The id of the version approved in its place.")
    ),
    AuditAction.VERSION_WITHDRAWN: transition(
        reason=k(STR), signature=k(INT, "The withdrawal signature's id.")
    ),
    AuditAction.VERSION_EXPIRED: transition(expires_on=k(DATE)),
    AuditAction.VERSION_EXPIRY_NOTICE_SENT: shape(expires_on=k(DATE)),
    # Review
    AuditAction.TASK_ADDED: shape(review=k(INT), role=k(ROLE), reason=k(STR)),
    AuditAction.TASK_DECIDED: shape(
        **TASK,
        decision=k(STR, "approved, changes_requested or rejected."),
        comment=k(STR),
        signature=k(INT, "The decision's signature id."),
    ),
    AuditAction.TASK_CANCELLED: shape(
        **TASK,
        because=k(STR, "Why: recalled (earlier code: the round's outcome)."),
        reason=k(STR, "The recall's reason.", added_later=True),
        decided_task=k(INT, "The task whose decision closed the round.", legacy=True),
    ),
    AuditAction.TASK_REASSIGNED: shape(
        **TASK,
        **{
            "from": k(nullable(INT), "The previous assignee's user id, or null."),
            "to": k(INT, "The new assignee's user id."),
        },
    ),
    AuditAction.TASK_REMINDED: shape(
        **TASK, due_at=k(DATETIME), to=k(list_of(INT), "The reminded users' ids.")
    ),
    AuditAction.TASK_REOPENED: shape(
        **TASK,
        reason=k(STR),
        signed_hash=k(nullable(STR), "The content hash the void approval was signed on."),
        current_hash=k(STR),
    ),
    AuditAction.REVIEW_RECALLED: shape(
        review=k(INT),
        round=k(INT),
        reason=k(STR),
        outcome=k(STR, "changes_requested or rejected."),
        decided=k(map_of(STR, "Each role decided before the recall, and how.")),
        cancelled_tasks=k(list_of(INT)),
    ),
    AuditAction.REFERENCE_CHECKED: shape(reference=k(INT), task=k(INT)),
    AuditAction.SIGNATURE_APPLIED: shape(
        printed_name=k(STR),
        meaning=k(STR, "approved, changes_requested, rejected or withdrawn."),
        signed_at=k(DATETIME),
        content_hash=k(STR),
        role=k(ROLE, "Absent on a withdrawal's signature.", required=False),
        task=k(INT, "Absent on a withdrawal's signature.", required=False),
    ),
    AuditAction.SIGNATURE_FAILED: shape(
        intent=k(STR, "What the signer tried to sign."),
        reason=k(STR),
        client_ip=k(nullable(STR)),
        task=k(nullable(INT)),
        role=k(nullable(ROLE)),
        version=k(nullable(INT)),
    ),
    AuditAction.ANNOTATION_CREATED: shape(
        field=k(STR),
        start=k(INT),
        end=k(INT),
        quoted_text=k(STR),
        text=k(STR),
        parent=k(nullable(INT), "The thread's root annotation, for a reply."),
    ),
    AuditAction.ANNOTATION_RESOLVED: shape(annotation=k(INT)),
    AuditAction.ANNOTATION_REPLIED: shape(
        field=k(STR),
        start=k(INT),
        end=k(INT),
        quoted_text=k(STR),
        text=k(STR),
        parent=k(nullable(INT), "The thread's root annotation."),
    ),
    AuditAction.ANNOTATION_ADDRESSED: shape(
        annotation=k(INT),
        version=k(INT, "The version number the thread is on."),
        field=k(STR),
        quoted_text=k(STR),
    ),
    AuditAction.ANNOTATION_REOPENED: shape(
        "An author took back the addressed mark.",
        annotation=k(INT),
        version=k(INT, "The version number the thread is on."),
        field=k(STR),
        quoted_text=k(STR),
    ),
    AuditAction.ANNOTATIONS_CARRIED_OVER: shape(
        from_version=k(INT, "The id of the version the annotations came from."),
        carried=k(map_of(INT, "Each carried annotation's id (key) and its copy's id.")),
        outdated=k(list_of(INT), "Annotations whose text is gone from this version."),
    ),
    # Affinity model
    AuditAction.AFFINITY_TRAINING_REQUESTED: shape(task_id=k(STR), evaluate=k(BOOL)),
    AuditAction.AFFINITY_TRAINING_DEFERRED: shape(task_id=k(STR), reason=k(STR)),
    AuditAction.AFFINITY_TRAINING_NOT_QUEUED: shape(
        "Written by earlier code; now affinity.training_deferred.",
        task_id=k(STR),
        reason=k(STR),
    ),
    AuditAction.AFFINITY_MODEL_ACTIVATED: shape(
        model_version=k(STR),
        previous=k(list_of(STR), "The model versions it replaced."),
        reason=k(STR, "An admin's reason, when one activated it.", required=False),
        gate=k(STR, "The gate's verdict, when training activated it.", required=False),
    ),
    AuditAction.AFFINITY_MODEL_FORCE_ACTIVATED: shape(
        model_version=k(STR), reason=k(STR), gate_reason=k(STR)
    ),
    AuditAction.AFFINITY_MODEL_REJECTED: shape(
        model_version=k(STR),
        reason=k(STR),
        active=k(nullable(STR), "The model version that stays active, or null."),
    ),
    # Accounts (the first tokens' entries carried no data at all)
    AuditAction.TOKEN_ISSUED: shape(
        name=k(STR, added_later=True),
        prefix=k(STR, added_later=True),
        expires_at=k(nullable(DATETIME), added_later=True),
        scopes=k(list_of(STR), added_later=True),
        owner=k(INT, "The token's user id.", added_later=True),
    ),
    AuditAction.TOKEN_REVOKED: shape(
        name=k(STR, added_later=True),
        prefix=k(STR, added_later=True),
        owner=k(INT, added_later=True),
    ),
    # Webhooks
    AuditAction.WEBHOOK_REGISTERED: shape(url=k(STR), events=k(list_of(STR))),
    AuditAction.WEBHOOK_DELETED: shape(url=k(STR)),
    # Experiments
    AuditAction.EXPERIMENT_STARTED: shape(
        name=k(STR),
        arms=k(list_of(STR), "Each arm as 'name: policy'."),
        holdout=k(NUMBER),
        traffic=k(STR, "The requests it covers, in words."),
    ),
    AuditAction.EXPERIMENT_STOPPED: shape(name=k(STR)),
    AuditAction.EXPERIMENT_ARCHIVED: shape(name=k(STR)),
    # The Django admin
    AuditAction.ADMIN_ADDED: shape(
        **ADMIN, fields=k(list_of(STR)), changes=k(CHANGES, "The values entered.")
    ),
    AuditAction.ADMIN_CHANGED: shape(**ADMIN, fields=k(list_of(STR)), changes=k(CHANGES)),
    AuditAction.ADMIN_DELETED: shape(**ADMIN),
    # The chain itself
    AuditAction.AUDIT_CHAIN_KEYED: shape(
        unkeyed_through=k(INT, "The last entry hashed with plain sha256."),
        unkeyed_last_hash=k(STR),
        unkeyed_chain_verified=k(BOOL),
        note=k(STR),
    ),
}


# --- checking data against a schema -------------------------------------------------------

_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _resolve(schema: Schema) -> Schema:
    target = schema.get("$ref")
    return COMPONENTS[target.removeprefix(REF)] if target else schema


def _check(schema: Schema, value: Any, where: str, problems: list[str]) -> None:
    schema = _resolve(schema)
    kind = schema.get("type")
    if kind is None:
        return  # any JSON value
    if value is None:
        if not schema.get("nullable"):
            problems.append(f"{where}: null where {kind} is expected")
        return
    is_bool = isinstance(value, bool)
    if not isinstance(value, _PY_TYPES[kind]) or (is_bool and kind in ("integer", "number")):
        problems.append(f"{where}: {type(value).__name__} where {kind} is expected")
        return
    fmt = schema.get("format")
    if fmt in ("date-time", "date"):
        try:
            (datetime if fmt == "date-time" else date).fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not a {fmt}")
    if kind == "array":
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{where}.{i}", problems)
    elif kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}.{name}: missing")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                _check(properties[name], item, f"{where}.{name}", problems)
            elif extra is False:
                problems.append(f"{where}.{name}: not a key of this action's data")
            elif isinstance(extra, dict):
                _check(extra, item, f"{where}.{name}", problems)


def data_problems(action: AuditAction, data: Any, *, stored: bool = False) -> list[str]:
    """What is wrong with ``data`` (JSON types, as stored) for ``action``; empty when right.

    ``stored``: check against every shape the action has had (an entry already
    in the trail) instead of the shape new entries must have.
    """
    registered = SHAPES.get(action)
    if registered is None:
        return [f"{action}: no data shape registered in content_modules/audit/shapes.py"]
    schema = registered.read_schema(action) if stored else registered.write_schema()
    problems: list[str] = []
    _check(schema, data, "data", problems)
    return problems


# --- the OpenAPI components ---------------------------------------------------------------


def component_suffix(action: AuditAction) -> str:
    """``version.changes_requested`` -> ``VersionChangesRequested``."""
    words = action.value.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words)


def schema_components() -> dict[str, Schema]:
    """The data components: one per action plus the shared nested ones."""
    components = dict(COMPONENTS)
    for action, registered in SHAPES.items():
        components[f"AuditData{component_suffix(action)}"] = registered.read_schema(action)
    return components


def table_markdown() -> str:
    """The per-action table of data keys, for the schema's description of AuditEntry."""
    rows = ["| action | data keys (`?` optional; `*` older entries only) |", "|---|---|"]
    for action, registered in SHAPES.items():
        keys = ", ".join(
            f"`{name}`" + ("*" if key.legacy else "?" if not key.required else "")
            for name, key in registered.keys.items()
        )
        rows.append(f"| `{action.value}` | {keys or '(none)'} |")
    return "\n".join(rows)
