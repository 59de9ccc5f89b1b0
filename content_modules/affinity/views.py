"""People's pages for HCP insight: the HCP list, one HCP's affinities and timeline, the model."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from content_modules.accounts.roles import can_see_unapproved
from content_modules.errors import Conflict, DomainError

from .learning import actions, charts
from .models import HCP, AffinityModel, EngagementEvent

PAGE_SIZE = 50
TIMELINE_LENGTH = 40


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "library/forbidden.html", {"reason": reason}, status=403)


def insight_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in authors, reviewers and admins; everyone else gets a 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_see_unapproved(request.user):
            return _forbidden(request, "HCP insight is for authors, reviewers and administrators.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@insight_page
def hcp_list(request: HttpRequest) -> HttpResponse:
    """Search HCPs by external id, specialty, segment or region."""
    q = request.GET.get("q", "").strip()[:64]
    hcps = HCP.objects.annotate(n_events=Count("events"), last_event=Max("events__occurred_at"))
    if q:
        hcps = hcps.filter(
            Q(external_id__icontains=q)
            | Q(specialty__icontains=q)
            | Q(segment__icontains=q)
            | Q(region__icontains=q)
        )
    page = Paginator(hcps.order_by("external_id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "affinity/hcp_list.html",
        {"page": page, "q": q, "nav": "affinity", "total": page.paginator.count},
    )


@require_GET
@insight_page
def hcp_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    """One HCP: profile, affinity bars per feature, the recent engagement timeline."""
    try:
        hcp = actions.hcp_for_insight(actor=request.user, external_id=external_id)
    except DomainError as exc:
        return render(
            request,
            "affinity/hcp_missing.html",
            {"external_id": external_id, "reason": exc.message, "nav": "affinity"},
            status=exc.status_code,
        )
    affinity, no_model = None, None
    try:
        affinity = actions.hcp_affinity_get(actor=request.user, external_id=external_id)
    except Conflict as exc:
        no_model = exc.message
    sections = []
    if affinity:
        for kind, title in (
            ("message", "Message"),
            ("theme", "Theme"),
            ("tonality", "Tonality"),
            ("format", "Format"),
            ("channel", "Channel"),
        ):
            sections.append(
                {"kind": kind, "title": title, "chart": charts.bar_chart(affinity[kind])}
            )
    timeline = (
        EngagementEvent.objects.filter(hcp=hcp)
        .select_related("version", "module__latest")
        .order_by("-occurred_at")[:TIMELINE_LENGTH]
    )
    return render(
        request,
        "affinity/hcp_detail.html",
        {
            "hcp": hcp,
            "affinity": affinity,
            "no_model": no_model,
            "sections": sections,
            "timeline": timeline,
            "n_events": hcp.events.count(),
            "nav": "affinity",
        },
    )


@require_GET
@insight_page
def model_page(request: HttpRequest) -> HttpResponse:
    """The active model and evaluation metrics across model versions, as a chart."""
    models = list(AffinityModel.objects.defer("artifact").order_by("-trained_at")[:30])
    active = next((m for m in models if m.is_active), None)
    history = list(reversed(models))
    return render(
        request,
        "affinity/model.html",
        {
            "active": active,
            "models": models,
            "rows": [charts.model_row(m) for m in models],
            "chart": charts.metrics_chart(history),
            "nav": "affinity",
        },
    )
