"""API plumbing shared by every app: pagination and the one error format.

Every error under ``/api/`` answers one shape (API.md), the ``Error`` schema
component::

    {"code": "invalid", "detail": "exclude.0: A valid integer is required.",
     "errors": {"exclude.0": ["A valid integer is required."]}}

``code`` is machine-readable (``ERROR_CODES``), ``detail`` one human sentence,
``errors`` the messages per field with nested fields dotted (``tags.message``,
``exclude.0``, ``hcps.3.specialty``); errors of no field are under
``non_field_errors``. Requests Django answers before any view (an unknown route,
a body over the limit) get the same shape from ``ApiEnvelopeMiddleware``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from content_modules.errors import DomainError

NON_FIELD = "non_field_errors"
# The machine-readable codes, by the HTTP status they come with.
ERROR_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    503: "unavailable",
}
# DRF's own codes that read better under another name.
_DRF_CODES = {"parse_error": "invalid", "authentication_failed": "not_authenticated"}


class ErrorSerializer(serializers.Serializer):
    """The one error body of the whole API (the ``Error`` component)."""

    code = serializers.CharField(
        help_text="Machine-readable, e.g.: " + ", ".join(sorted(set(ERROR_CODES.values()))) + "."
    )
    detail = serializers.CharField(help_text="One human-readable sentence.")
    # A field named like Serializer.errors: DRF's metaclass moves declared fields off
    # the class, so it shadows nothing at runtime (the stubs cannot know that).
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field; nested fields dotted (tags.message, exclude.0). "
        "Batch endpoints report bad items in their 200 answer instead, as "
        "rejected: [{index, errors}] with errors of this same form.",
    )


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested errors as ``{"tags.message": [...], "exclude.0": [...]}``: one list per field.

    Dicts nest by key, lists of dicts (a ``many=True`` serializer) by index; a
    nested ``non_field_errors`` belongs to its parent (``tags``, not
    ``tags.non_field_errors``).
    """
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if prefix and key == NON_FIELD:
                name = prefix
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if any(isinstance(item, dict | list | tuple) for item in detail):
            for index, item in enumerate(detail):
                if isinstance(item, dict | list | tuple):
                    name = f"{prefix}.{index}" if prefix else str(index)
                    for field, messages in flatten_errors(item, name).items():
                        flat.setdefault(field, []).extend(messages)
                elif item:
                    flat.setdefault(prefix or NON_FIELD, []).append(str(item))
        elif detail:
            flat[prefix or NON_FIELD] = [str(m) for m in detail]
    elif detail is not None:
        flat[prefix or NON_FIELD] = [str(detail)]
    return flat


def error_body(code: str, detail: str, errors: dict[str, list[str]] | None = None) -> dict:
    """The API's error body; without field errors the detail is the non-field error."""
    return {"code": code, "detail": detail, "errors": errors or {NON_FIELD: [detail]}}


def _summary(errors: dict[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    first = messages[0] if messages else "Invalid input."
    text = first if field == NON_FIELD else f"{field}: {first}"
    more = sum(len(m) for m in errors.values()) - 1
    return text + (f" (and {more} more)" if more > 0 else "")


def validation_body(detail: Any, code: str = "invalid") -> dict:
    errors = flatten_errors(detail) or {NON_FIELD: ["Invalid input."]}
    return {"code": code, "detail": _summary(errors), "errors": errors}


class Pagination(PageNumberPagination):
    """Page-number pagination with a caller-chosen page size from 1 to 500 (else 400)."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = None
        if size is None or not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.page_query_param:
                parameter["schema"].update(minimum=1)
        return parameters


def _rate_limit_headers(response: Response, request: Any) -> None:
    """``RateLimit-*`` on a 429, from what the throttle that refused recorded."""
    limit = getattr(request, "rate_limit", None) if request is not None else None
    wait = response.get("Retry-After")
    if limit is None:
        return
    number, remaining, reset = limit
    response["RateLimit-Limit"] = str(number)
    response["RateLimit-Remaining"] = str(remaining)
    response["RateLimit-Reset"] = str(reset)
    if wait is None:
        response["Retry-After"] = str(reset)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain, validation and framework errors to the API's one error body."""
    if isinstance(exc, DomainError):
        errors = {field: list(messages) for field, messages in exc.as_errors().items()}
        response = Response(error_body(exc.code, exc.message, errors), status=exc.status_code)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = "Token"
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("too_large", "Request body exceeds the size limit."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DataError) and "NUL" in str(exc):
        # PostgreSQL refuses NUL characters in text: bad input, not a server error.
        return Response(
            error_body("invalid", "Text must not contain NUL (0x00) characters."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else list(exc.messages)
        return Response(validation_body(detail), status=status.HTTP_400_BAD_REQUEST)

    handled = drf_exception_handler(exc, context)
    if handled is None:
        return None
    response = handled
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_body(exc.detail)
        return response
    given = response.data.get("detail") if isinstance(response.data, dict) else None
    message = str(given) if given is not None else str(exc)
    code = ERROR_CODES.get(response.status_code)
    if code is None:  # a status of no common code: DRF's own, renamed where it reads better
        default: str = getattr(exc, "default_code", None) or "error"
        code = _DRF_CODES.get(default, default)
    response.data = error_body(code, message)
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        _rate_limit_headers(response, context.get("request"))
    return response
