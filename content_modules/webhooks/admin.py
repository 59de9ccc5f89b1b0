"""Django admin: registered webhooks and the outbox, dead letters included."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from .models import DeliveryStatus, Webhook, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "events", "created_by", "created_at")
    fields = ("url", "events", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # registered through the API, which answers the secret once


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "webhook",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry now (dead letters too)")
    def retry_now(self, request, queryset) -> None:
        n = queryset.exclude(status=DeliveryStatus.DELIVERED).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), leased_until=None
        )
        self.message_user(request, f"{n} deliveries will be sent by the next sweep.")
