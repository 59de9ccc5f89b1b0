"""Landing after sign-in and the author's work list ("my modules")."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from content_modules.accounts.roles import is_admin, is_author

from .work import landing_url_name, my_modules


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to their work: reviewers to the queue, authors to their modules."""
    return redirect(landing_url_name(request.user))


@require_GET
@login_required
def my_modules_view(request: HttpRequest) -> HttpResponse:
    """An author's modules: changes requested (with comment counts), drafts, in review."""
    user = request.user
    if not (is_author(user) or is_admin(user)):
        return render(
            request,
            "review/forbidden.html",
            {"reason": "My modules is for authors."},
            status=403,
        )
    sections = my_modules(user)
    return render(
        request,
        "review/my_modules.html",
        {"nav": "mine", "sections": sections, "total": sum(len(s["rows"]) for s in sections)},
    )
