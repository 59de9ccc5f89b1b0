"""Celery beat task of the accounts app: prune spent throttle and lockout rows."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from . import services


@shared_task(
    name="content_modules.accounts.tasks.prune_attempts",
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=240,
    time_limit=300,
)
def prune_attempts() -> dict[str, int]:
    """Delete throttle hits and lock counters whose windows are over (idempotent)."""
    return services.attempts_prune()
