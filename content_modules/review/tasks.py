"""Celery beat tasks of the review workflow: thin, idempotent calls into the actions."""

from __future__ import annotations

from datetime import date, datetime

from celery import shared_task
from django.db import DatabaseError

from . import services

# Both jobs are idempotent (a version is expired or noticed once, a task reminded
# once a day), so a retry after a lost worker or a database blip is safe.
_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "max_retries": 3,
    "soft_time_limit": 240,
    "time_limit": 300,
}


@shared_task(name="content_modules.review.tasks.expire_versions", **_TASK_OPTIONS)
def expire_versions(today: str | None = None) -> dict[str, int]:
    """Mark approvals past their expiry date expired and send the 30-day notices."""
    return services.versions_expire(today=date.fromisoformat(today) if today else None)


@shared_task(name="content_modules.review.tasks.remind_overdue_tasks", **_TASK_OPTIONS)
def remind_overdue_tasks(now: str | None = None) -> int:
    """Email the reviewers of overdue open tasks (at most once a day per task)."""
    return services.tasks_remind_overdue(now=datetime.fromisoformat(now) if now else None)
