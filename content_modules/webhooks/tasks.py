"""Celery tasks: send one webhook delivery; sweep the due ones (beat)."""

from __future__ import annotations

from celery import shared_task

from . import outbox


@shared_task(name="content_modules.webhooks.tasks.deliver_webhook_task", acks_late=True)
def deliver_webhook_task(delivery_id: str) -> str | None:
    """Send one delivery if it is still due (idempotent: a delivered one is not resent)."""
    return outbox.deliver(delivery_id)


@shared_task(
    name="content_modules.webhooks.tasks.sweep_webhooks_task",
    acks_late=True,
    soft_time_limit=240,
    time_limit=300,
)
def sweep_webhooks_task() -> int:
    """Retry deliveries that are due (back-off) or that the broker never took."""
    return outbox.sweep()
