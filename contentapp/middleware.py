"""Response headers every page carries."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
        from django.http import JsonResponse

        return JsonResponse({"errors": {name or "non_field_errors": [message]}, "detail": message},
                            status=400)  # fmt: skip
    from django.http import HttpResponseBadRequest

    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
