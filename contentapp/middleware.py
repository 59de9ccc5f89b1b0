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
