"""Reads of the review workflow: the reviewer queue and the MLR dashboard figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from content_modules.library.models import Module, ModuleVersion

# The dashboard's figures live in dashboard.py; these names stay importable from here.
from .dashboard import AGE_BUCKETS, DashboardFilters, dashboard_metrics, percentile  # noqa: F401
from .models import Review, ReviewTask, Signature, TaskStatus
from .policy import decision_policy


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def review_queue(user, filters: dict | None = None, *, now: datetime | None = None):
    """Review tasks for a list or queue, overdue first, then by due date.

    ``filters``: ``mine`` (the tasks I may decide, by ``decision_policy``), ``role``,
    ``status``, ``overdue``, ``module``, ``brand``, ``market``.
    """
    filters = filters or {}
    now = now or timezone.now()
    qs: QuerySet = ReviewTask.objects.with_context()
    if _truthy(filters.get("mine", False)):
        qs = decision_policy.decidable_tasks(user, qs)
    if filters.get("role"):
        qs = qs.filter(role=filters["role"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("overdue") not in (None, ""):
        overdue = Q(status=TaskStatus.OPEN, due_at__lt=now)
        qs = qs.filter(overdue) if _truthy(filters["overdue"]) else qs.exclude(overdue)
    if filters.get("module"):
        qs = qs.filter(version__module_id=filters["module"])
    if filters.get("brand"):
        qs = qs.filter(version__module__brand__slug=filters["brand"])
    if filters.get("market"):
        qs = qs.filter(version__module__market__code=filters["market"])
    return qs.annotate(
        overdue_rank=Case(
            When(status=TaskStatus.OPEN, due_at__lt=now, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by("-overdue_rank", "due_at", "id")


def module_signatures(module: Module):
    """Every signature on any version of a module, oldest first."""
    return (
        Signature.objects.filter(version__module=module)
        .select_related("version", "signer")
        .order_by("signed_at", "id")
    )


def signature_manifest(signature: Signature, current_hash: str | None = None) -> dict[str, Any]:
    """One signature as the review record shows it."""
    return {
        "id": signature.pk,
        "version": signature.version.number,
        "version_id": signature.version_id,
        "task": signature.task_id,
        "role": signature.role,
        "signer": signature.signer.get_username(),
        "printed_name": signature.printed_name,
        "meaning": signature.meaning,
        "signed_at": signature.signed_at.astimezone(UTC),
        "content_hash": signature.content_hash,
        "reason": signature.reason,
        "manifestation": signature.manifestation(),
        "matches_current_content": (
            None if current_hash is None else signature.content_hash == current_hash
        ),
    }


def review_record(version: ModuleVersion) -> dict[str, Any]:
    """The complete review record of one version: reviews, tasks and signatures."""
    version = ModuleVersion.objects.select_related("module__brand", "module__market").get(
        pk=version.pk
    )
    current_hash = version.compute_content_hash()
    reviews = (
        Review.objects.filter(version=version)
        .select_related("submitted_by", "closed_by")
        .prefetch_related("tasks__decided_by", "tasks__assignee")
        .order_by("submitted_at", "id")
    )
    signatures = (
        Signature.objects.filter(version=version)
        .select_related("version", "signer")
        .order_by("signed_at", "id")
    )
    return {
        "module": version.module_id,
        "version": version.number,
        "version_id": version.pk,
        "title": version.title,
        "brand": version.module.brand.slug,
        "market": version.module.market.code,
        "status": version.status,
        "content_hash": current_hash,
        "submitted_at": version.submitted_at,
        "approved_at": version.approved_at,
        "expires_on": version.expires_on,
        "reviews": [
            {
                "id": review.pk,
                "round": review.round,
                "status": review.status,
                "submitted_by": review.submitted_by.get_username(),
                "submitted_at": review.submitted_at,
                "closed_at": review.closed_at,
                "recalled_by": review.closed_by.get_username() if review.closed_by else None,
                "recall_reason": review.close_reason,
                "tasks": [
                    {
                        "id": task.pk,
                        "role": task.role,
                        "status": task.status,
                        "assignee": task.assignee.get_username() if task.assignee else None,
                        "due_at": task.due_at,
                        "decided_by": task.decided_by.get_username() if task.decided_by else None,
                        "decided_at": task.decided_at,
                        "comment": task.comment,
                    }
                    for task in sorted(review.tasks.all(), key=lambda t: t.role)
                ],
            }
            for review in reviews
        ],
        "signatures": [signature_manifest(s, current_hash) for s in signatures],
    }
