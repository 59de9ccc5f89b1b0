"""API plumbing shared by every app: pagination and the error format.

Every error answers ``{"errors": {field: [messages]}}`` (API.md); errors that
belong to no field use ``non_field_errors`` and also carry ``detail``.
"""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from content_modules.errors import DomainError


class Pagination(PageNumberPagination):
    """Page-number pagination with a caller-chosen page size up to 500."""

    page_size_query_param = "page_size"
    max_page_size = 500


def _as_error_dict(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return detail
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain, validation and framework errors to the API's error body."""
    if isinstance(exc, DomainError):
        body = {"errors": exc.as_errors(), "detail": exc.message}
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        message = "Request body exceeds the size limit."
        return Response(
            {"errors": {"non_field_errors": [message]}, "detail": message},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DataError) and "NUL" in str(exc):
        # PostgreSQL refuses NUL characters in text: bad input, not a server error.
        message = "Text must not contain NUL (0x00) characters."
        return Response(
            {"errors": {"non_field_errors": [message]}, "detail": message},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        else:
            errors = {"non_field_errors": [str(m) for m in exc.messages]}
        return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": _as_error_dict(exc.detail)}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        detail = str(detail) if detail is not None else str(exc)
        response.data = {"errors": {"non_field_errors": [detail]}, "detail": detail}
    return response
