"""Webhook API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("webhooks", api.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/<int:webhook_id>", api.WebhookDetailView.as_view(), name="api-webhook-detail"),
]
