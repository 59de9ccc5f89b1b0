"""Figures of the MLR dashboard, computed from the review rows (never from the audit trail).

Every figure honours the same filters: ``brand`` (slug), ``market`` (code) and
a date window ``[start, end)`` (default: the last ``weeks`` weeks). Times are
hours between stored timestamps:

- cycle time per ISO week: a review's submission to its version's approval;
- cycle time per role: a task's creation (the submission) to its decision,
  for tasks decided in the window; the slowest role is flagged;
- rounds per approval: for each version approved in the window, the review
  rounds its module went through since the module's previous approval
  (cancelled rounds excluded), so 1.0 means everything passed first time;
- first-pass rate per role: decisions on a module's first review that approved;
- open tasks per role by age since submission, and how many are overdue.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from content_modules.accounts.roles import ReviewRole

from .models import TASK_DECIDED, Review, ReviewStatus, ReviewTask, TaskStatus

ROLE_LABELS = dict(ReviewRole.choices)


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


@dataclass(frozen=True)
class DashboardFilters:
    """What the dashboard is narrowed to; dates are whole UTC days, ``until`` inclusive."""

    brand: str = ""
    market: str = ""
    since: date | None = None
    until: date | None = None

    def window(self, now: datetime, weeks: int) -> tuple[datetime, datetime]:
        """The ``[start, end)`` datetimes the figures cover."""
        end = (
            datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC)
            if self.until
            else now
        )
        start = (
            datetime.combine(self.since, time.min, tzinfo=UTC)
            if self.since
            else end - timedelta(weeks=weeks)
        )
        return start, end

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them, such as the CSV)."""
        values = {
            "brand": self.brand,
            "market": self.market,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in values.items() if v}


def _scoped(qs, filters: DashboardFilters, prefix: str):
    if filters.brand:
        qs = qs.filter(**{f"{prefix}module__brand__slug": filters.brand})
    if filters.market:
        qs = qs.filter(**{f"{prefix}module__market__code": filters.market})
    return qs


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _cycle_per_week(filters: DashboardFilters, start, end) -> list[dict[str, Any]]:
    per_week: dict[str, list[float]] = defaultdict(list)
    approved = _scoped(
        Review.objects.filter(
            status=ReviewStatus.APPROVED,
            version__approved_at__gte=start,
            version__approved_at__lt=end,
        ),
        filters,
        "version__",
    ).values_list("submitted_at", "version__approved_at")
    for submitted_at, approved_at in approved:
        if submitted_at is None or approved_at is None:  # filtered out above; for the types
            continue
        year, week, _ = approved_at.isocalendar()
        per_week[f"{year}-W{week:02d}"].append(_hours(approved_at, submitted_at))
    return [
        {
            "week": week,
            "approvals": len(hours),
            "median_hours": round(percentile(hours, 50) or 0.0, 2),
            "p90_hours": round(percentile(hours, 90) or 0.0, 2),
        }
        for week, hours in sorted(per_week.items())
    ]


def _cycle_per_role(filters: DashboardFilters, start, end) -> list[dict[str, Any]]:
    hours: dict[str, list[float]] = {role: [] for role in ReviewRole.values}
    rows = _scoped(
        ReviewTask.objects.filter(
            status__in=TASK_DECIDED, decided_at__gte=start, decided_at__lt=end
        ),
        filters,
        "version__",
    ).values_list("role", "created_at", "decided_at")
    for role, created_at, decided_at in rows:
        if decided_at is not None:
            hours.setdefault(role, []).append(_hours(decided_at, created_at))
    out: list[dict[str, Any]] = []
    for role, values in hours.items():
        out.append(
            {
                "role": role,
                "label": ROLE_LABELS.get(role, role),
                "decisions": len(values),
                "median_hours": round(percentile(values, 50) or 0.0, 2),
                "mean_hours": round(sum(values) / len(values), 2) if values else 0.0,
                "p90_hours": round(percentile(values, 90) or 0.0, 2),
                "slowest": False,
            }
        )
    decided = [r for r in out if r["decisions"]]
    if decided:
        max(decided, key=lambda r: float(r["median_hours"]))["slowest"] = True
    return out


def _rounds_per_approval(filters: DashboardFilters, start, end) -> dict[str, Any]:
    approvals = list(
        _scoped(
            Review.objects.filter(
                status=ReviewStatus.APPROVED,
                version__approved_at__gte=start,
                version__approved_at__lt=end,
            ),
            filters,
            "version__",
        ).values_list("version__module_id", "version__approved_at")
    )
    modules = {m for m, _ in approvals}
    reviews: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for module_id, submitted_at, status in (
        Review.objects.filter(version__module_id__in=modules)
        .exclude(status=ReviewStatus.CANCELLED)
        .values_list("version__module_id", "submitted_at", "status")
    ):
        reviews[module_id].append((submitted_at, status))
    counts = [_rounds_of(reviews[module_id], approved_at) for module_id, approved_at in approvals]
    distribution = {"1": 0, "2": 0, "3+": 0}
    for n in counts:
        distribution["1" if n <= 1 else "2" if n == 2 else "3+"] += 1
    return {
        "approvals": len(counts),
        "rounds": sum(counts),
        "mean": round(sum(counts) / len(counts), 2) if counts else None,
        "distribution": distribution,
    }


def _rounds_of(reviews: list[tuple[datetime, str]], approved_at: datetime) -> int:
    """The rounds (submission times) after the module's previous approved round, up to this one.

    ``reviews`` are the module's (submitted_at, status) pairs. A module has one
    round open at a time, so the rounds between two approved rounds are exactly
    the ones this approval took.
    """
    approved_rounds = [at for at, status in reviews if status == ReviewStatus.APPROVED]
    own = max((at for at in approved_rounds if at <= approved_at), default=approved_at)
    before = max((at for at in approved_rounds if at < own), default=None)
    return sum(1 for at, _ in reviews if at <= own and (before is None or at > before))


def _first_pass(filters: DashboardFilters, start, end) -> list[dict[str, Any]]:
    earlier = Review.objects.filter(
        version__module_id=OuterRef("review__version__module_id"),
        submitted_at__lt=OuterRef("review__submitted_at"),
    )
    rows = (
        _scoped(
            ReviewTask.objects.filter(
                status__in=TASK_DECIDED, decided_at__gte=start, decided_at__lt=end
            ),
            filters,
            "version__",
        )
        .exclude(Exists(earlier))
        .values_list("role", "status")
    )
    decided: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"decided": 0, "approved": 0})
    for role, status in rows:
        decided[role]["decided"] += 1
        decided[role]["approved"] += status == TaskStatus.APPROVED
    first_pass = []
    for role in ReviewRole.values:
        counts = decided.get(role, {"decided": 0, "approved": 0})
        rate = counts["approved"] / counts["decided"] if counts["decided"] else None
        first_pass.append({"role": role, **counts, "rate": rate})
    return first_pass


def _open_tasks(filters: DashboardFilters, now) -> dict[str, Any]:
    labels = [label for label, _, _ in AGE_BUCKETS]
    open_tasks = {role: dict.fromkeys(labels, 0) for role in ReviewRole.values}
    overdue = dict.fromkeys(ReviewRole.values, 0)
    for role, created_at, due_at in _scoped(
        ReviewTask.objects.open(), filters, "version__"
    ).values_list("role", "created_at", "due_at"):
        open_tasks.setdefault(role, dict.fromkeys(labels, 0))[_bucket(now - created_at)] += 1
        overdue[role] = overdue.get(role, 0) + (due_at < now)
    return {"buckets": labels, "by_role": open_tasks, "overdue": overdue}


def dashboard_metrics(
    *, now: datetime | None = None, weeks: int = 12, filters: DashboardFilters | None = None
) -> dict[str, Any]:
    """Every figure of the MLR dashboard for ``filters`` (see the module docstring)."""
    now = now or timezone.now()
    filters = filters or DashboardFilters()
    start, end = filters.window(now, weeks)
    return {
        "generated_at": now,
        "start": start,
        "end": end,
        "filters": filters,
        "cycle_time": _cycle_per_week(filters, start, end),
        "cycle_by_role": _cycle_per_role(filters, start, end),
        "rounds": _rounds_per_approval(filters, start, end),
        "first_pass": _first_pass(filters, start, end),
        "open_tasks": _open_tasks(filters, now),
    }
