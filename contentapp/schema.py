"""OpenAPI post-processing: the error answers every endpoint may give, documented once.

API.md fixes the error contract for the whole API: 400 bad input, 401 without
valid credentials, 403 for a role that may not act, 404 for what the caller
may not see (including a page past the end of a list), 413 for an oversized
body, 429 when throttled, always as ``{"errors": {field: [messages]}}``.
Views document their success bodies and specific errors; this hook adds the
common ones they leave out, so clients and the API fuzzer know them.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Messages per field (a list, or nested for batch items).",
        },
        "detail": {"type": "string"},
    },
    "required": ["errors"],
}
COMMON = {
    "400": "Bad input, naming the field and the problem.",
    "401": "No valid credentials.",
    "403": "The caller's role may not do this.",
    "404": "Not found, or not visible to the caller.",
    "429": "Throttled.",
}
WRITE_ONLY = {"413": "Body or file over its size limit."}
METHODS = ("get", "post", "put", "patch", "delete")


def add_error_responses(result, generator, request, public):
    """Add the API-wide error answers to every operation that does not document them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ApiError", ERROR_SCHEMA)
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON, **(WRITE_ONLY if method != "get" else {}))
            for code, description in extra.items():
                responses.setdefault(code, {"description": description, "content": body})
    return result
