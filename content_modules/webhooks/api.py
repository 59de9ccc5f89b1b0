"""Webhook registration (admins): POST/GET /api/v1/webhooks, DELETE /api/v1/webhooks/{id}."""

from __future__ import annotations

import secrets
from typing import cast
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.permissions import IsAdmin
from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import NotFound
from contentapp.api import ErrorSerializer
from contentapp.parsers import SizeLimitedJSONParser

from .models import Webhook, WebhookEvent


def _http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Must be an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise serializers.ValidationError("Must not carry credentials; the signature is the proof.")


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, validators=[_http_url])
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        min_length=1,
        max_length=len(WebhookEvent.choices),
    )


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="Shown this once: verify each delivery's X-Signature with it."
    )


def _as_dict(hook: Webhook) -> dict:
    return {"id": hook.pk, "url": hook.url, "events": hook.events, "created_at": hook.created_at}


_EXAMPLE = {
    "id": 3,
    "url": "https://engine.example.com/hooks/content",
    "events": ["version.withdrawn", "version.expired"],
    "created_at": "2026-12-02T09:00:00Z",
}
_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Admins only."),
}


class WebhookListView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]
    parser_classes = [SizeLimitedJSONParser]

    @extend_schema(
        operation_id="webhooks_list",
        summary="Registered webhooks (without their secrets)",
        examples=[OpenApiExample("Registered", value=[_EXAMPLE], response_only=True)],
        responses={200: WebhookSerializer(many=True), **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response([_as_dict(h) for h in Webhook.objects.all()])

    @extend_schema(
        operation_id="webhooks_create",
        summary="Register a webhook; answers its signing secret once",
        request=WebhookCreateSerializer,
        examples=[
            OpenApiExample(
                "Register",
                value={"url": _EXAMPLE["url"], "events": _EXAMPLE["events"]},
                request_only=True,
            ),
            OpenApiExample(
                "Registered",
                value={**_EXAMPLE, "secret": "whsec_3f9c...e1"},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        responses={
            201: WebhookCreatedSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Bad url or events."),
            **_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        hook = Webhook.objects.create(
            url=data["url"],
            events=sorted(set(data["events"])),
            secret="whsec_" + secrets.token_hex(24),
            created_by=cast(User, request.user),  # IsAdmin: a signed-in user
        )
        audit_record(
            actor=request.user,
            action=AuditAction.WEBHOOK_REGISTERED,
            obj=hook,
            data={"url": hook.url, "events": hook.events},
        )
        location = reverse("api-webhook-detail", kwargs={"webhook_id": hook.pk})
        return Response(
            {**_as_dict(hook), "secret": hook.secret},
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class WebhookDetailView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]

    @extend_schema(
        operation_id="webhooks_destroy",
        summary="Delete a webhook (its pending deliveries go with it)",
        responses={
            204: None,
            404: OpenApiResponse(ErrorSerializer, description="No such webhook."),
            **_ERRORS,
        },
    )
    def delete(self, request: Request, webhook_id: int) -> Response:
        hook = Webhook.objects.filter(pk=webhook_id).first()
        if hook is None:
            raise NotFound("No such webhook.", field="id")
        audit_record(
            actor=request.user, action=AuditAction.WEBHOOK_DELETED, obj=hook, data={"url": hook.url}
        )
        hook.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
