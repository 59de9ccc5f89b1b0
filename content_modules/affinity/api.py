"""The engine's HCP and engagement-event endpoints, and the reuse finder for people.

Batches are validated by the actions in ``ingest.py`` in plain Python (a DRF
serializer per item would cost more than the database write); the serializers
here only document the bodies in the OpenAPI schema.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import ingest
from .models import HCP, EventType


class CanIngest(BasePermission):
    """The engine's service account and admins."""

    message = "Only the engine service account or an admin may do this."

    def has_permission(self, request, view) -> bool:
        return bool(
            request.user and request.user.is_authenticated and ingest.can_ingest(request.user)
        )


def _data(request: Request):
    # Reading the raw body first makes Django enforce DATA_UPLOAD_MAX_MEMORY_SIZE
    # (RequestDataTooBig -> 413); DRF's parser would otherwise stream any size.
    request.body  # noqa: B018
    return request.data


class ErrorsSerializer(serializers.Serializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class HCPProfileSerializer(serializers.Serializer):
    specialty = serializers.CharField(max_length=64, required=False, allow_blank=True)
    segment = serializers.CharField(max_length=64, required=False, allow_blank=True)
    region = serializers.CharField(max_length=64, required=False, allow_blank=True)
    preferred_channel = serializers.CharField(max_length=32, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False)


class HCPSerializer(HCPProfileSerializer):
    external_id = serializers.CharField(max_length=64)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    unsubscribed_channels = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Channels the HCP unsubscribed from ('*' for every channel).",
    )


class HCPBulkItemSerializer(HCPProfileSerializer):
    external_id = serializers.CharField(max_length=64)


class HCPBulkRequestSerializer(serializers.Serializer):
    hcps = HCPBulkItemSerializer(many=True, help_text="Up to 10,000 profiles.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class HCPBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


class EventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    hcp = serializers.CharField(max_length=64, help_text="The HCP's external id.")
    module = serializers.IntegerField(
        required=False, help_text="Module id; the version approved at occurred_at is implied."
    )
    version = serializers.IntegerField(
        required=False, help_text="Version id, instead of module (the module is implied)."
    )
    type = serializers.ChoiceField(choices=EventType.choices)
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone.")
    channel = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    recommendation_id = serializers.UUIDField(required=False, allow_null=True)
    dwell_seconds = serializers.FloatField(required=False, allow_null=True, min_value=0)


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text="Up to 10,000 events.")


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


def hcp_as_dict(hcp: HCP) -> dict:
    """The API form of one HCP profile."""
    return {
        "external_id": hcp.external_id,
        "specialty": hcp.specialty,
        "segment": hcp.segment,
        "region": hcp.region,
        "preferred_channel": hcp.preferred_channel,
        "attributes": hcp.attributes,
        "created_at": hcp.created_at,
        "updated_at": hcp.updated_at,
        "unsubscribed_channels": sorted(ingest.unsubscribed_channels(hcp)),
    }


class HCPDetailView(APIView):
    """One HCP profile, created or replaced by PUT."""

    permission_classes = [CanIngest]

    @extend_schema(
        operation_id="hcp_retrieve",
        responses={200: HCPSerializer, 400: ErrorsSerializer, 404: ErrorsSerializer},
    )
    def get(self, request: Request, external_id: str) -> Response:
        hcp = ingest.hcp_get(actor=request.user, external_id=external_id)
        return Response(hcp_as_dict(hcp))

    @extend_schema(
        operation_id="hcp_put",
        request=HCPProfileSerializer,
        responses={200: HCPSerializer, 201: HCPSerializer, 400: ErrorsSerializer},
        description="Creates or replaces the profile: fields left out become empty.",
    )
    def put(self, request: Request, external_id: str) -> Response:
        hcp, created = ingest.hcp_upsert(
            actor=request.user, external_id=external_id, data=_data(request)
        )
        return Response(
            hcp_as_dict(hcp), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class HCPBulkView(APIView):
    """Create or replace up to 10,000 HCP profiles in one call."""

    permission_classes = [CanIngest]

    @extend_schema(
        operation_id="hcps_bulk",
        request=HCPBulkRequestSerializer,
        responses={200: HCPBulkResultSerializer, 400: ErrorsSerializer, 413: ErrorsSerializer},
    )
    def post(self, request: Request) -> Response:
        result = ingest.hcps_bulk_upsert(actor=request.user, payload=_data(request))
        return Response(
            {"created": result.created, "updated": result.updated, "rejected": result.rejected}
        )


class EventsView(APIView):
    """Engagement events from the engine, idempotent by event_id."""

    permission_classes = [CanIngest]

    @extend_schema(
        operation_id="events_create",
        request=EventBatchSerializer,
        responses={
            200: EventBatchResultSerializer,
            400: ErrorsSerializer,
            413: OpenApiResponse(ErrorsSerializer, description="Over 10,000 events or too big."),
        },
        description=(
            "Valid events are stored even when others are rejected; a replayed event_id "
            "counts as a duplicate and changes nothing; unknown HCPs are created."
        ),
    )
    def post(self, request: Request) -> Response:
        result = ingest.events_ingest(actor=request.user, payload=_data(request))
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
            }
        )
