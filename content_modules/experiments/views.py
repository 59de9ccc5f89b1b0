"""Experiments in the browser: the list, a form to start one, and each one's results."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from content_modules.engagement.models import Microsegment
from content_modules.errors import DomainError
from content_modules.library.models import Brand, Channel, Market

from . import actions, charts
from .models import Metric, Policy, Status

ARM_ROWS = 4


def admin_page(view):
    """Admins run experiments; everyone else gets a 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not actions.can_manage(request.user):
            return render(
                request,
                "library/forbidden.html",
                {"reason": "Experiments are run by administrators."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


def _choices() -> dict:
    return {
        "brands": list(Brand.objects.order_by("slug").values_list("slug", "name")),
        "markets": list(Market.objects.order_by("code").values_list("code", "name")),
        "channels": list(Channel.objects.order_by("slug").values_list("slug", "label")),
        "microsegments": list(
            Microsegment.objects.filter(model__is_active=True)
            .order_by("key")
            .values_list("key", "label")
        ),
        "policies": Policy.choices,
        "metrics": Metric.choices,
        "arm_rows": range(ARM_ROWS),
    }


def _form_arms(post) -> list[actions.ArmSpec]:
    arms = []
    for i in range(ARM_ROWS):
        name = (post.get(f"arm-{i}-name") or "").strip()
        policy = (post.get(f"arm-{i}-policy") or "").strip()
        if not name and not policy:
            continue
        modules_text = post.get(f"arm-{i}-modules") or ""
        modules = [int(m) for m in modules_text.replace(",", " ").split() if m.isdigit()]
        arms.append(actions.ArmSpec(name, policy, modules))
    return arms


def _number(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        return float("nan")


@admin_page
@require_http_methods(["GET", "POST"])
def experiment_list(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    if request.method == "POST":
        post = request.POST
        try:
            holdout = _number(post.get("holdout"))
            experiment = actions.experiment_create(
                actor=request.user,
                name=post.get("name") or "",
                arms=_form_arms(post),
                holdout=0.0 if holdout is None else holdout,
                metric=post.get("metric") or Metric.CLICK,
                brand=post.get("brand") or None,
                market=post.get("market") or None,
                channel=post.get("channel") or None,
                microsegment=post.get("microsegment") or None,
                min_detectable_lift=_number(post.get("min_detectable_lift")),
            )
            return redirect("experiments:detail", experiment_id=experiment.pk)
        except DomainError as exc:
            errors[exc.field or "form"] = exc.message
    status = request.GET.get("status") or "current"
    if status not in ("current", "all", *Status.values):
        status = "current"  # an unknown tab: the default one
    experiments = actions.experiment_list(
        actor=request.user, status=None if status == "current" else status
    )
    return render(
        request,
        "experiments/list.html",
        {
            "nav": "experiments",
            "experiments": experiments,
            "status": status,
            "errors": errors,
            "form": request.POST if request.method == "POST" else {},
            **_choices(),
        },
        status=400 if errors else 200,
    )


@admin_page
@require_http_methods(["GET", "POST"])
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            if request.POST.get("action") == "stop":
                actions.experiment_stop(actor=request.user, experiment_id=experiment_id)
            elif request.POST.get("action") == "archive":
                actions.experiment_archive(actor=request.user, experiment_id=experiment_id)
            return redirect("experiments:detail", experiment_id=experiment_id)
        except DomainError as exc:
            error = exc.message
    mde = _number(request.GET.get("min_detectable_lift"))
    try:
        results = actions.experiment_results(
            actor=request.user,
            experiment_id=experiment_id,
            min_detectable_lift=mde if mde is None or mde == mde else -1.0,
        )
    except DomainError as exc:
        if exc.code == "not_found":
            return render(request, "library/forbidden.html", {"reason": exc.message}, status=404)
        error = exc.message
        results = actions.experiment_results(actor=request.user, experiment_id=experiment_id)
    arms = results["arms"]
    return render(
        request,
        "experiments/detail.html",
        {
            "nav": "experiments",
            "r": results,
            "arms": arms,
            "first": arms[0]["name"] if arms else "",
            "chart": charts.rate_chart(arms),
            "error": error,
            "running": results["status"] == Status.RUNNING,
            "stopped": results["status"] == Status.STOPPED,
        },
    )
