"""Celery tasks of the delivery app."""

from __future__ import annotations

from celery import shared_task

from . import idempotency


@shared_task(
    name="content_modules.delivery.tasks.prune_idempotency",
    acks_late=True,
    soft_time_limit=240,
    time_limit=300,
)
def prune_idempotency() -> int:
    """Delete stored answers past the replay window (idempotent)."""
    return idempotency.prune()
