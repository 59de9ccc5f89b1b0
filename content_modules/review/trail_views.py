"""The audit trail in the browser: a module's and the whole system's, in words, filtered.

Who may read it: a module's trail is for everyone who may see the module's
history (authors, reviewers, admins: ``pages.may_see_history``); the system
trail is for admins. The CSV links carry the page's filters, and the CSV
views (``views.module_audit_csv``, ``views.audit_csv``) apply the same ones.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from content_modules.accounts.roles import is_admin
from content_modules.audit.actions import AuditAction
from content_modules.audit.describe import action_label, describe, version_numbers
from content_modules.audit.trail import AuditFilters, audit_trail
from content_modules.library.models import Module

from . import pages
from .forms import AuditFilterForm

AUDIT_PAGE_SIZE = 50
# Entries that are refusals or alarms, marked on the page.
ALERT_ACTIONS = {AuditAction.SIGNATURE_FAILED, AuditAction.AFFINITY_MODEL_REJECTED}


def audit_filters(request: HttpRequest) -> tuple[AuditFilterForm, AuditFilters]:
    """Parse the trail's filters; invalid ones are reported on the form and left out."""
    form = AuditFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    return form, AuditFilters(
        user=data.get("user") or "",
        action=data.get("action") or "",
        since=data.get("since"),
        until=data.get("until"),
    )


def _trail_page(request: HttpRequest, *, module: Module | None) -> HttpResponse:
    form, filters = audit_filters(request)
    entries = audit_trail(module_id=module.pk if module else None, filters=filters)
    entries = entries.select_related("actor").order_by("-seq")
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    numbers = version_numbers(rows)
    query = urlencode(filters.query())
    csv_url = (
        reverse("review:module_audit_csv", args=[module.pk])
        if module
        else reverse("review:audit_csv")
    )
    return render(
        request,
        "review/audit.html",
        {
            "nav": "library" if module else "audit",
            "module": module,
            "title": (module.latest.title if module.latest else f"Module {module.pk}")
            if module
            else "",
            "form": form,
            "page": page,
            "rows": [
                {
                    "entry": e,
                    "words": describe(e, numbers),
                    "label": action_label(e.action),
                    "alert": e.action in ALERT_ACTIONS,
                }
                for e in rows
            ],
            "query": query,
            "csv_url": csv_url + (f"?{query}" if query else ""),
            "active_filters": bool(filters.query()),
        },
    )


@require_GET
@login_required
def module_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """One module's audit trail in words, newest first."""
    if not pages.may_see_history(request.user):
        return pages_forbidden(
            request, "Module history is for authors, reviewers and administrators."
        )
    module = get_object_or_404(Module.objects.select_related("latest"), pk=pk)
    return _trail_page(request, module=module)


@require_GET
@login_required
def system_audit(request: HttpRequest) -> HttpResponse:
    """The whole system's audit trail in words (admins only)."""
    if not is_admin(request.user):
        return pages_forbidden(request, "The system audit trail is for administrators.")
    return _trail_page(request, module=None)


def pages_forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "review/forbidden.html", {"reason": reason}, status=403)
