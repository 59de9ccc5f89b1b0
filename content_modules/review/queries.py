"""Reads of the review workflow: the reviewer queue and the MLR dashboard figures."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from content_modules.accounts.roles import ReviewRole
from content_modules.library.models import Module, ModuleVersion

from .models import TASK_DECIDED, Review, ReviewStatus, ReviewTask, Signature, TaskStatus
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


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# Age buckets of open tasks, in days since submission: [lower, upper).
AGE_BUCKETS = (("0-1d", 0, 1), ("1-3d", 1, 3), ("3-5d", 3, 5), ("5d+", 5, None))


def _bucket(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    for label, low, high in AGE_BUCKETS:
        if days >= low and (high is None or days < high):
            return label
    return AGE_BUCKETS[0][0]


def dashboard_metrics(*, now: datetime | None = None, weeks: int = 12) -> dict[str, Any]:
    """Figures of the MLR dashboard.

    - ``cycle_time``: per ISO week of approval, median and 90th percentile hours
      from submission to approval;
    - ``first_pass``: per role, the share of first-round decisions that approved;
    - ``open_tasks``: per role, open tasks by age bucket, and how many are overdue.
    """
    now = now or timezone.now()
    since = now - timedelta(weeks=weeks)

    per_week: dict[str, list[float]] = defaultdict(list)
    approved = Review.objects.filter(
        status=ReviewStatus.APPROVED, version__approved_at__gte=since
    ).values_list("submitted_at", "version__approved_at")
    for submitted_at, approved_at in approved:
        if submitted_at is None or approved_at is None:  # filtered out above; for the types
            continue
        year, week, _ = approved_at.isocalendar()
        hours = (approved_at - submitted_at).total_seconds() / 3600
        per_week[f"{year}-W{week:02d}"].append(hours)
    cycle_time = [
        {
            "week": week,
            "approvals": len(hours),
            "median_hours": round(percentile(hours, 50) or 0.0, 2),
            "p90_hours": round(percentile(hours, 90) or 0.0, 2),
        }
        for week, hours in sorted(per_week.items())
    ]

    decided: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"decided": 0, "approved": 0})
    rows = ReviewTask.objects.filter(review__round=1, status__in=TASK_DECIDED).values_list(
        "role", "status"
    )
    for role, status in rows:
        decided[role]["decided"] += 1
        decided[role]["approved"] += status == TaskStatus.APPROVED
    first_pass = []
    for role in ReviewRole.values:
        counts = decided.get(role, {"decided": 0, "approved": 0})
        rate = counts["approved"] / counts["decided"] if counts["decided"] else None
        first_pass.append({"role": role, **counts, "rate": rate})

    labels = [label for label, _, _ in AGE_BUCKETS]
    open_tasks = {role: dict.fromkeys(labels, 0) for role in ReviewRole.values}
    overdue = dict.fromkeys(ReviewRole.values, 0)
    for role, created_at, due_at in ReviewTask.objects.open().values_list(
        "role", "created_at", "due_at"
    ):
        open_tasks.setdefault(role, dict.fromkeys(labels, 0))[_bucket(now - created_at)] += 1
        overdue[role] = overdue.get(role, 0) + (due_at < now)
    return {
        "generated_at": now,
        "cycle_time": cycle_time,
        "first_pass": first_pass,
        "open_tasks": {"buckets": labels, "by_role": open_tasks, "overdue": overdue},
    }


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
