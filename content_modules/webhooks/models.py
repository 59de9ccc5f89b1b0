"""Registered webhooks and their outbox of deliveries (one row per event and webhook)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class WebhookEvent(models.TextChoices):
    VERSION_APPROVED = "version.approved", "A version was approved"
    VERSION_WITHDRAWN = "version.withdrawn", "A version was withdrawn"
    VERSION_EXPIRED = "version.expired", "A version expired"


class Webhook(models.Model):
    """A receiver registered by an admin, with the secret its deliveries are signed with."""

    url = models.URLField(max_length=500)
    events = models.JSONField(help_text="The event names this receiver wants.")
    # Kept as is: signing needs the secret itself (a hash cannot sign). Shown once.
    secret = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (retried with back-off)"
    DELIVERED = "delivered", "Delivered (2xx)"
    DEAD = "dead", "Dead letter (gave up)"


class WebhookDelivery(models.Model):
    """One event for one webhook: the outbox row, written with the state change."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(
        null=True, blank=True, help_text="A sender holds it until then."
    )
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id} ({self.status})"
