"""Response headers every page carries, and the API's error shape before any view."""

import re
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework.utils.mediatypes import media_type_matches

from contentapp.api import ERROR_CODES, error_body

# No inline scripts or styles: every script and stylesheet is a static file.
CONTENT_SECURITY_POLICY = (
    # blob: lets the upload form preview a chosen image before it is sent.
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The API docs page loads Swagger UI from its own static files but runs one inline bootstrap.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


# A caller's X-Request-Id is echoed only when it is short and plain; otherwise a new one.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def request_id(request: HttpRequest) -> str:
    """The caller's ``X-Request-Id`` when it is safe to echo, else a fresh one."""
    sent = request.META.get("HTTP_X_REQUEST_ID", "")
    return sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


class ApiEnvelopeMiddleware:
    """``X-Request-Id`` on every answer; every 4xx under ``/api/`` as the API's JSON error.

    Django answers some requests before any API view runs: an unknown route,
    a trailing slash, a path value its converter refuses (``/modules/abc``),
    a CSRF failure, a body over Django's own limits. Those pages were HTML;
    under ``/api/`` they become ``{"code", "detail", "errors"}`` with the
    same status (contentapp.api). JSON answers pass through untouched.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id(request)
        request.request_id = rid  # type: ignore[attr-defined]
        response = self.get_response(request)
        if (
            400 <= response.status_code < 500
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            response = _as_api_error(request, response)
        response["X-Request-Id"] = rid
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        """415 for a body the API view cannot parse, before any work (auth included).

        DRF refuses such a body only when the view first reads it, after its
        lookups and permission checks; answering up front makes every JSON
        operation answer a form body alike.
        """
        view_class = getattr(view_func, "cls", None)
        if view_class is None or not request.path.startswith("/api/"):
            return None
        if not _has_body(request) or not hasattr(view_class, (request.method or "").lower()):
            return None
        sent = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        accepted = [parser.media_type for parser in view_class.parser_classes]
        if any(media_type_matches(media, sent) for media in accepted):
            return None
        detail = f'Unsupported media type "{sent[:100]}": send {" or ".join(accepted)}.'
        body = {
            "code": "unsupported_media_type",
            "detail": detail,
            "errors": {"non_field_errors": [detail]},
        }
        return JsonResponse(body, status=415)


def _has_body(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > 0 or "HTTP_TRANSFER_ENCODING" in request.META


def _as_api_error(request: HttpRequest, original: HttpResponse) -> HttpResponse:
    status = original.status_code
    if status == 404:
        detail = _not_found_detail(request.path)
    else:
        try:
            detail = HTTPStatus(status).phrase + "."
        except ValueError:
            detail = "The request was refused."
    response = JsonResponse(error_body(ERROR_CODES.get(status, "error"), detail), status=status)
    for header in _KEPT_HEADERS:
        if header in original:
            response[header] = original[header]
    return response


def _not_found_detail(path: str) -> str:
    if path.endswith("/") and len(path) > 1:
        try:
            resolve(path[:-1])
        except Resolver404:
            pass
        else:
            return f"No route at {path[:200]}: API paths have no trailing slash."
    return f"No API route matches {path[:200]} (or a path value is malformed)."


class ContentSecurityPolicyMiddleware:
    """Add a Content-Security-Policy header that forbids inline scripts."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            policy = (
                DOCS_CONTENT_SECURITY_POLICY
                if request.path.startswith("/api/docs")
                else CONTENT_SECURITY_POLICY
            )
            response["Content-Security-Policy"] = policy
        return response


class RefuseUnstorableQueryMiddleware:
    """Answer 400 for a query string holding NUL, before any view queries with it.

    PostgreSQL refuses NUL in text, so ``?q=a%00b`` on a page whose filter
    reaches the database (the HCP list, the admin lists) was a 500. Under
    ``/api/`` the answer has the API's error shape, naming the parameter.
    Requests without a query string (the recommendation hot path) pay one
    dictionary lookup.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return _bad_query(request, name.replace("\x00", ""))
        return self.get_response(request)


def _bad_query(request: HttpRequest, name: str) -> HttpResponse:
    message = "Query parameters must not contain NUL (0x00) characters."
    if request.path.startswith("/api/"):
        errors = {name or "non_field_errors": [message]}
        return JsonResponse({"code": "invalid", "detail": message, "errors": errors}, status=400)
    from django.http import HttpResponseBadRequest

    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
