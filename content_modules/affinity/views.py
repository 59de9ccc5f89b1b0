"""People's pages for HCP insight: the HCP list, one HCP's affinities, engagement and
timeline, the model, the engagement model's microsegments."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from content_modules.accounts.roles import can_see_unapproved
from content_modules.delivery import services as delivery
from content_modules.engagement import serving as engagement_serving
from content_modules.engagement.models import EngagementModel, Microsegment
from content_modules.errors import Conflict, DomainError
from content_modules.library.services import vocabulary_labels

from . import actions, localtime
from .learning import charts
from .models import HCP, AffinityModel, EngagementEvent, TrainingRequest

PAGE_SIZE = 50
TIMELINE_LENGTH = 40
SATURATION_WORDS = {
    "undersaturated": "Undersaturated",
    "on_target": "On target",
    "saturated": "Saturated",
}


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


def _segment_order(key: str) -> tuple[int, str]:
    """ "ms-2" before "ms-10"."""
    number = key.rsplit("-", 1)[-1]
    return (int(number) if number.isdigit() else 1_000_000, key)


def _active_segments() -> tuple[EngagementModel | None, list[Microsegment]]:
    """The active engagement model (without its artifact) and its microsegments, in key order."""
    model = EngagementModel.objects.filter(is_active=True).defer("artifact").first()
    if model is None:
        return None, []
    segments = sorted(model.segments.all(), key=lambda s: _segment_order(s.key))
    return model, segments


@require_GET
@insight_page
def hcp_list(request: HttpRequest) -> HttpResponse:
    """Search HCPs by external id, specialty, segment or region; filter by microsegment."""
    q = request.GET.get("q", "").strip()[:64]
    microsegment = request.GET.get("microsegment", "").strip()[:16]
    hcps = HCP.objects.annotate(n_events=Count("events"), last_event=Max("events__occurred_at"))
    if q:
        hcps = hcps.filter(
            Q(external_id__icontains=q)
            | Q(specialty__icontains=q)
            | Q(segment__icontains=q)
            | Q(region__icontains=q)
        )
    if microsegment:
        hcps = hcps.filter(microsegment=microsegment)
    page = Paginator(hcps.order_by("external_id"), PAGE_SIZE).get_page(request.GET.get("page"))
    _model, segments = _active_segments()
    options = [{"key": s.key, "label": s.label} for s in segments]
    if microsegment and microsegment not in {s.key for s in segments}:
        options.append({"key": microsegment, "label": "not in the engagement model in use"})
    chosen = next((o for o in options if o["key"] == microsegment), None)
    filters = {k: v for k, v in (("q", q), ("microsegment", microsegment)) if v}
    return render(
        request,
        "affinity/hcp_list.html",
        {
            "page": page,
            "q": q,
            "microsegment": microsegment,
            "chosen_segment": chosen,
            "segment_options": options,
            "filtered": bool(filters),
            "querystring": urlencode(filters),
            "nav": "affinity",
            "total": page.paginator.count,
            "channel_labels": vocabulary_labels()["channel"],
        },
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
    labels = vocabulary_labels()
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
                {
                    "kind": kind,
                    "title": title,
                    "chart": charts.bar_chart(affinity[kind], labels.get(kind)),
                }
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
            "engagement": _engagement(hcp, labels["channel"]),
            "affinity": affinity,
            "no_model": no_model,
            "sections": sections,
            "timeline": timeline,
            "n_events": hcp.events.count(),
            "zone_name": localtime.hcp_zone_name(hcp),
            "nav": "affinity",
            "channel_labels": labels["channel"],
        },
    )


def _engagement(hcp: HCP, channel_labels: dict) -> dict:
    """The engagement model's view of one HCP: the profile the API answers, plus its
    full weekday x local-hour grid as a heatmap, both from the same model."""
    snapshot = delivery._snapshot(hcp.external_id)  # what the engine's requests read
    events = snapshot.events
    one = engagement_serving.hcp_estimate(hcp, events, head_id=snapshot.engagement_head)
    profile = engagement_serving.describe(one, hcp, events)
    send_time = profile["send_time"]
    heatmap = charts.heatmap(one.grid(), send_time["best"])
    best = [
        {
            "words": charts.slot_words(b["weekday"], b["hour"]),
            "percent": charts.percent(b["score"]),
        }
        for b in ([] if heatmap["flat"] else send_time["best"])
    ]
    frequency = profile["frequency"]
    return {
        "model_version": profile["model_version"],
        "zone": send_time["timezone"],
        "channel_section": {
            "kind": "engagement-channel",
            "title": "Channel affinity",
            "chart": charts.bar_chart(profile["channels"], channel_labels),
        },
        "heatmap": heatmap,
        "best": best,
        "frequency": frequency,
        "saturation": SATURATION_WORDS.get(frequency["state"], frequency["state"]),
        "microsegment": profile["microsegment"],
        "from_group": profile["from_group"],
        "drivers": profile["drivers"],
    }


@require_GET
@insight_page
def microsegments(request: HttpRequest) -> HttpResponse:
    """The active engagement model's microsegments: size, share, strongest features."""
    model, segments = _active_segments()
    total = sum(s.size for s in segments)
    rows = [
        {
            "segment": s,
            "share_percent": charts.percent(s.size / total) if total else "0%",
            "features": [
                {
                    "words": f.get("words") or f.get("feature", ""),
                    "z": f"{float(f.get('z') or 0.0):+.2f}",
                }
                for f in (s.features or [])
                if isinstance(f, dict)
            ],
            "list_url": reverse("affinity:hcp_list") + "?" + urlencode({"microsegment": s.key}),
        }
        for s in segments
    ]
    return render(
        request,
        "affinity/microsegments.html",
        {"model": model, "rows": rows, "total": total, "nav": "affinity"},
    )


def _gate_row(model: AffinityModel) -> dict:
    """The gate's figures for one model: the challenger beside group popularity."""
    gate = (model.metrics or {}).get("gate") or {}
    versus = gate.get("popularity") or {}
    ndcg, loss = versus.get("ndcg@5") or {}, versus.get("log_loss") or {}
    return {
        "ndcg": ndcg.get("mine"),
        "popularity_ndcg": ndcg.get("other"),
        "ndcg_margin": ndcg.get("margin"),
        "log_loss": loss.get("mine"),
        "popularity_log_loss": loss.get("other"),
        "log_loss_margin": loss.get("margin"),
    }


def _model_page(request: HttpRequest, *, status: int = 200, reason_error: dict | None = None):
    models = list(
        AffinityModel.objects.defer("artifact")
        .select_related("override_by")
        .order_by("-trained_at")[:30]
    )
    active = next((m for m in models if m.is_active), None)
    history = list(reversed(models))
    rows = []
    for m in models:
        row = charts.model_row(m)
        row["gate"] = _gate_row(m)
        rows.append(row)
    latest = models[0] if models else None
    pending = TrainingRequest.objects.filter(finished_at__isnull=True).order_by("-requested_at")
    return render(
        request,
        "affinity/model.html",
        {
            "active": active,
            "latest": latest,
            "models": models,
            "rows": rows,
            "chart": charts.metrics_chart(history),
            "can_train": actions.can_train(request.user),
            "can_activate": actions.can_force_activate(request.user),
            "pending": pending.first(),
            "reason_error": reason_error or {},
            "nav": "affinity",
        },
        status=status,
    )


@require_GET
@insight_page
def model_page(request: HttpRequest) -> HttpResponse:
    """The active model, every trained model with the gate's verdict, metrics as a chart."""
    return _model_page(request)


@require_POST
@insight_page
def model_train_view(request: HttpRequest) -> HttpResponse:
    """'Train now' (admins): a training request through the same outbox as the API."""
    try:
        queued = actions.affinity_training_request(actor=request.user)
    except DomainError as exc:
        return _forbidden(request, exc.message)
    request_row = TrainingRequest.objects.filter(pk=queued.task_id).first()
    if request_row is not None and request_row.finished_at is not None:
        messages.success(request, f"Training finished: {request_row.outcome}.")
    elif queued.queued:
        messages.success(request, "Training requested; the model appears here when it is done.")
    else:
        messages.warning(
            request,
            "Training requested while the task queue does not answer; it runs once it is back.",
        )
    return redirect("affinity:model")


@require_POST
@insight_page
def model_activate_view(request: HttpRequest, model_id) -> HttpResponse:
    """An admin activates a stored model; one the gate rejected needs a reason (audited)."""
    reason = request.POST.get("reason", "")
    try:
        model = actions.model_activate(actor=request.user, model_id=model_id, reason=reason)
    except DomainError as exc:
        if exc.status_code == 403:
            return _forbidden(request, exc.message)
        return _model_page(
            request, status=exc.status_code, reason_error={str(model_id): exc.message}
        )
    messages.success(request, f"Model {model.model_version} is now in use.")
    return redirect("affinity:model")
