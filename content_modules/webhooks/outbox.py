"""Writing webhook deliveries with the state change, and sending them after commit.

``record`` is called inside the transaction that approves, withdraws or
expires a version (``review.services._transition``): the outbox rows commit
with the change or not at all, so nothing is ever sent for a rolled-back
transaction. Once it commits, each delivery is handed to Celery
(``contentapp.celery.enqueue``: bounded, never blocks on Redis); whatever
the broker does not take, or a receiver does not answer 2xx, the beat sweep
(``webhooks-sweep``, every ``WEBHOOK_SWEEP_INTERVAL_SECONDS``) retries with
exponential back-off until ``WEBHOOK_MAX_ATTEMPTS``, then marks it dead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"


def record(event: str, payload_data: dict) -> list[WebhookDelivery]:
    """Write one delivery per webhook subscribed to ``event``; send them after commit."""
    hooks = [h for h in Webhook.objects.all() if event in (h.events or [])]
    if not hooks:
        return []
    now = timezone.now()
    made = []
    for hook in hooks:
        delivery = WebhookDelivery(webhook=hook, event=event, next_attempt_at=now)
        delivery.payload = {
            "id": str(delivery.id),
            "event": event,
            "occurred_at": now.isoformat(),
            "data": payload_data,
        }
        made.append(delivery)
    WebhookDelivery.objects.bulk_create(made)
    ids = [str(d.id) for d in made]
    transaction.on_commit(lambda: _send_after_commit(ids))
    return made


def _send_after_commit(ids: list[str]) -> None:
    from contentapp.celery import enqueue

    from .tasks import deliver_webhook_task

    for delivery_id in ids:
        enqueue(deliver_webhook_task, args=(delivery_id,))  # False: the sweep sends it


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now=None) -> bool:
    """What a receiver does (README: Webhooks): recompute, compare, refuse old stamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _backoff(attempts: int) -> timedelta:
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** (attempts - 1), settings.WEBHOOK_RETRY_MAX_SECONDS))


def _claim(delivery_id) -> WebhookDelivery | None:
    """Lease one due delivery for one sender (a short transaction; the POST runs outside)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=lease)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


def deliver(delivery_id) -> str | None:
    """POST one due delivery, signed; record the outcome. Answers its status, or None."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None  # delivered, dead, not due, or another sender holds it
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "contentapp-webhooks/1",
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(delivery.webhook.secret, body, int(time.time())),
    }
    code, error = None, ""
    try:
        answer = requests.post(
            delivery.webhook.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        code = answer.status_code
        if not 200 <= code < 300:
            error = f"answered {code}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {"attempts": attempts, "leased_until": None, "last_status_code": code}
    if not error:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now, last_error="")
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=DeliveryStatus.DEAD, last_error=error)
        logger.warning("webhook delivery %s is dead after %d attempts", delivery.pk, attempts)
    else:
        fields.update(next_attempt_at=now + _backoff(attempts), last_error=error)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return str(fields.get("status", DeliveryStatus.PENDING))


def sweep(limit: int = 500) -> int:
    """Send every due pending delivery (beat); answers how many were attempted."""
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(deliver(pk) is not None for pk in due)
