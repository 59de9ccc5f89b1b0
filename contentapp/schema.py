"""OpenAPI post-processing: the one error schema, the error answers and the headers.

API.md fixes the error contract for the whole API: 400 bad input, 401 without
valid credentials, 403 for a role that may not act, 404 for what the caller
may not see (including a page past the end of a list), 405 for a method the
path does not take, 413 for an oversized body, 415 for a body that is not
JSON (or multipart where a file is sent), 429 when throttled: always the one
``Error`` component (contentapp.api.ErrorSerializer). Views document their
success bodies and specific errors; this hook folds any other error component
into ``Error``, adds the common answers they leave out, and declares the
headers: ``X-Request-Id`` on every answer, ``Location`` on 201,
``Retry-After`` and ``RateLimit-*`` on 429.
"""

from __future__ import annotations

from typing import Any

ERROR = "Error"
ERROR_REF = f"#/components/schemas/{ERROR}"
# Components that once described errors; every reference to one now points to Error.
FOLDED = ("ApiError", "DeliveryError", "Errors")
COMMON = {
    "400": "Bad input, naming the field and the problem.",
    "401": "No valid credentials.",
    "403": "The caller's role may not do this.",
    "404": "Not found, or not visible to the caller.",
    "405": "The path does not take this method.",
    "406": "The Accept header asks for no type this answer has.",
    "429": "Throttled: too many requests for this token (ENGINE_THROTTLE_RATE).",
}
WITH_BODY = {
    "413": "Body or file over its size limit.",
    "415": "The body's Content-Type is not one this operation takes.",
}
METHODS = ("get", "post", "put", "patch", "delete")


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


REQUEST_ID = _header(
    "The caller's X-Request-Id when it sent a plain one (up to 128 of A-Z a-z 0-9 . _ : -), "
    "else a new one. Quote it when reporting a problem."
)
LOCATION = _header("Where the created resource is read.", {"type": "string", "format": "uri"})
THROTTLED = {
    "Retry-After": _header("Seconds to wait before trying again.", {"type": "integer"}),
    "RateLimit-Limit": _header("Requests allowed per window.", {"type": "integer"}),
    "RateLimit-Remaining": _header("Requests left in this window.", {"type": "integer"}),
    "RateLimit-Reset": _header("Seconds until the window resets.", {"type": "integer"}),
}


def _retarget(node: Any) -> None:
    """Point every ``$ref`` to a folded error component at ``Error`` instead."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in FOLDED:
            node["$ref"] = ERROR_REF
        for value in node.values():
            _retarget(value)
    elif isinstance(node, list):
        for value in node:
            _retarget(value)


def error_schema() -> dict[str, Any]:
    """The ``Error`` component, as contentapp.api.ErrorSerializer describes it."""
    from contentapp.api import ErrorSerializer

    fields = ErrorSerializer().fields
    return {
        "type": "object",
        "description": (
            "The one error body of the API (every 4xx under /api/). Batch endpoints "
            "report bad items in their 200 answer as rejected: [{index, errors}], "
            "errors being this same {field: [messages]} form."
        ),
        "properties": {
            "code": {"type": "string", "description": fields["code"].help_text},
            "detail": {"type": "string", "description": fields["detail"].help_text},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": fields["errors"].help_text,
            },
        },
        "required": ["code", "detail", "errors"],
    }


def add_error_responses(result, generator, request, public):
    """One error component, the API-wide error answers and headers on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name in FOLDED:
        schemas.pop(name, None)
    schemas[ERROR] = error_schema()
    _retarget(result.get("paths", {}))
    body = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in METHODS:
                continue
            body_types = operation.get("requestBody", {}).get("content", {})
            if len(body_types) > 1:
                # openapi-python-client 0.29 writes "| Unset" into the signature of every
                # operation with several body types but imports Unset only for an
                # optional body: declared required, the module fails to import
                # (NameError). Such a body is optional to the schema (400 without it).
                operation["requestBody"]["required"] = False
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON, **(WITH_BODY if "requestBody" in operation else {}))
            for code, description in extra.items():
                responses.setdefault(code, {"description": description, "content": body})
            for code, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Request-Id", REQUEST_ID)
                if code == "201":
                    headers.setdefault("Location", LOCATION)
                elif code == "429":
                    for name, header in THROTTLED.items():
                        headers.setdefault(name, header)
    return result


AUDIT_ENTRY = "AuditEntry"


def type_audit_entries(result, generator, request, public):
    """``AuditEntry`` as one typed component per action, discriminated by ``action``.

    The serializer declares the entry's common fields; this hook copies them
    into ``AuditEntry<Action>`` for every action in ``content_modules.audit.shapes``,
    with ``action`` fixed to that value and ``data`` that action's typed
    ``AuditData<Action>`` component, and turns ``AuditEntry`` into their
    ``oneOf``. The shapes cover what older entries carry too (see shapes.py).
    """
    from content_modules.audit.shapes import SHAPES, component_suffix, schema_components

    schemas = result.get("components", {}).get("schemas", {})
    base = schemas.get(AUDIT_ENTRY)
    if base is None or "properties" not in base:
        return result
    action_refs = _refs(base["properties"]["action"])
    schemas.update(schema_components())
    mapping = {}
    for action in SHAPES:
        suffix = component_suffix(action)
        entry = {
            **base,
            "description": f"A `{action.value}` entry: {action.label}.",
            "properties": {
                **base["properties"],
                "action": {"type": "string", "enum": [action.value]},
                "data": {"$ref": f"#/components/schemas/AuditData{suffix}"},
            },
        }
        schemas[f"{AUDIT_ENTRY}{suffix}"] = entry
        mapping[action.value] = f"#/components/schemas/{AUDIT_ENTRY}{suffix}"
    schemas[AUDIT_ENTRY] = {
        "description": (
            "One audit trail entry. Its `action` names the shape of its `data`: one "
            "component per action (`AuditData<Action>`), covering entries written by "
            "earlier code too."
        ),
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "action", "mapping": mapping},
    }
    # The action enum the serializer's choices produced is now unused; drop it.
    used = _refs(result)
    for ref in action_refs - used:
        schemas.pop(ref.rsplit("/", 1)[-1], None)
    return result


def _refs(node: Any) -> set[str]:
    """Every ``$ref`` under ``node``."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()
