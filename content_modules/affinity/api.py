"""The engine's HCP and engagement-event endpoints, and the reuse finder for people.

Batches are validated by the actions in ``ingest.py`` in plain Python (a DRF
serializer per item would cost more than the database write); the serializers
here only document the bodies in the OpenAPI schema.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.roles import can_see_unapproved
from content_modules.accounts.scopes import TokenHasScope
from content_modules.errors import NotFound
from content_modules.library.models import Module, ModuleVersion, embedding_text_of
from content_modules.library.serializers import ErrorSerializer as ErrorsSerializer

from . import ingest, localtime, reuse
from .models import HCP, EventType

REUSE_TEXT_MAX_CHARS = 5000


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


class HCPProfileSerializer(serializers.Serializer):
    specialty = serializers.CharField(max_length=64, required=False, allow_blank=True)
    segment = serializers.CharField(max_length=64, required=False, allow_blank=True)
    region = serializers.CharField(max_length=64, required=False, allow_blank=True)
    preferred_channel = serializers.CharField(max_length=32, required=False, allow_blank=True)
    timezone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="IANA time zone name, e.g. Europe/London; blank: the market's.",
    )
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
    effective_timezone = serializers.CharField(
        read_only=True,
        help_text="The zone local times are read in: timezone, else the market's "
        "(the region's prefix), else the default.",
    )


class HCPBulkItemSerializer(HCPProfileSerializer):
    external_id = serializers.CharField(max_length=64)


# Component "HCPBulkRequest" (request components get "Request" appended, not twice).
@extend_schema_serializer(component_name="HCPBulk")
class HCPBulkRequestSerializer(serializers.Serializer):
    hcps = HCPBulkItemSerializer(many=True, help_text="Up to 10,000 profiles.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(  # type: ignore[assignment]  # the API field name
        child=serializers.ListField(child=serializers.CharField())
    )


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
        "timezone": hcp.timezone,
        "attributes": hcp.attributes,
        "created_at": hcp.created_at,
        "updated_at": hcp.updated_at,
        "unsubscribed_channels": sorted(ingest.unsubscribed_channels(hcp)),
        "effective_timezone": localtime.hcp_zone_name(hcp),
    }


EXAMPLE_PROFILE = {
    "specialty": "cardiology",
    "segment": "digital-first",
    "region": "UK-London",
    "preferred_channel": "email",
    "timezone": "Europe/London",
    "attributes": {"years_in_practice": 12},
}
EXAMPLE_HCP = {
    "external_id": "HCP-123",
    **EXAMPLE_PROFILE,
    "created_at": "2026-10-01T08:00:00Z",
    "updated_at": "2026-11-20T09:15:00Z",
    "unsubscribed_channels": [],
    "effective_timezone": "Europe/London",
}
EXAMPLE_REJECTED = {"index": 1, "errors": {"type": ['"seen" is not a valid choice.']}}


class HCPDetailView(APIView):
    """One HCP profile, created or replaced by PUT."""

    permission_classes = [CanIngest, TokenHasScope]
    required_scopes = {"GET": "hcps:read", "PUT": "hcps:write"}

    @extend_schema(
        operation_id="hcp_retrieve",
        summary="One HCP profile",
        examples=[OpenApiExample("Profile", value=EXAMPLE_HCP, response_only=True)],
        responses={200: HCPSerializer, 400: ErrorsSerializer, 404: ErrorsSerializer},
    )
    def get(self, request: Request, external_id: str) -> Response:
        hcp = ingest.hcp_get(actor=request.user, external_id=external_id)
        return Response(hcp_as_dict(hcp))

    @extend_schema(
        operation_id="hcp_update",
        summary="Create or replace one HCP profile",
        examples=[
            OpenApiExample("Profile", value=EXAMPLE_PROFILE, request_only=True),
            OpenApiExample("Stored", value=EXAMPLE_HCP, response_only=True),
        ],
        request=HCPProfileSerializer,
        responses={200: HCPSerializer, 201: HCPSerializer, 400: ErrorsSerializer},
        description="Creates or replaces the profile: fields left out become empty.",
    )
    def put(self, request: Request, external_id: str) -> Response:
        hcp, created = ingest.hcp_upsert(
            actor=request.user, external_id=external_id, data=_data(request)
        )
        if not created:
            return Response(hcp_as_dict(hcp))
        location = reverse("hcp-detail", kwargs={"external_id": hcp.external_id})
        return Response(
            hcp_as_dict(hcp),
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class HCPBulkView(APIView):
    """Create or replace up to 10,000 HCP profiles in one call."""

    permission_classes = [CanIngest, TokenHasScope]
    required_scopes = {"POST": "hcps:write"}

    @extend_schema(
        operation_id="hcps_bulk_create",
        summary="Create or replace up to 10,000 HCP profiles",
        examples=[
            OpenApiExample(
                "Two profiles",
                value={
                    "hcps": [
                        {"external_id": "HCP-123", **EXAMPLE_PROFILE},
                        {"external_id": "HCP-124", "specialty": "nephrology"},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Counts", value={"created": 1, "updated": 1, "rejected": []}, response_only=True
            ),
        ],
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

    permission_classes = [CanIngest, TokenHasScope]
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="events_create",
        summary="Record up to 10,000 engagement events (idempotent by event_id)",
        examples=[
            OpenApiExample(
                "One event",
                value={
                    "events": [
                        {
                            "event_id": "0f7a5c8e-2b1d-4e3f-8a9b-1c2d3e4f5a6b",
                            "hcp": "HCP-123",
                            "module": 42,
                            "type": "opened",
                            "occurred_at": "2026-11-20T09:15:00Z",
                            "channel": "email",
                            "recommendation_id": "5b0e8f5e-4c1d-4d8e-9a57-0c4e6f1b2a10",
                            "dwell_seconds": None,
                        }
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Counts",
                value={"accepted": 1, "duplicates": 0, "rejected": [EXAMPLE_REJECTED]},
                response_only=True,
            ),
        ],
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


class CanUseReuseFinder(BasePermission):
    """Authors, reviewers and admins: the people who write and review content."""

    message = "Only authors, reviewers and admins may search the library."

    def has_permission(self, request, view) -> bool:
        return bool(
            request.user and request.user.is_authenticated and can_see_unapproved(request.user)
        )


CONTENT_FIELDS = ("headline", "body", "key_message", "call_to_action")


def _blank_field(fields: list[str]) -> str:
    """The field to name when the text to compare is blank: the key message, if sent."""
    if not fields:
        return "text"
    return "key_message" if "key_message" in fields else fields[0]


@extend_schema_serializer(component_name="Similar")  # SimilarRequest
class SimilarRequestSerializer(serializers.Serializer):
    text = serializers.CharField(
        required=False,
        max_length=REUSE_TEXT_MAX_CHARS,
        help_text="Text to compare (or version, or the module fields as typed).",
    )
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="A version id to compare (or text)."
    )
    headline = serializers.CharField(
        required=False, allow_blank=True, max_length=REUSE_TEXT_MAX_CHARS
    )
    body = serializers.CharField(required=False, allow_blank=True, max_length=REUSE_TEXT_MAX_CHARS)
    key_message = serializers.CharField(
        required=False, allow_blank=True, max_length=REUSE_TEXT_MAX_CHARS
    )
    call_to_action = serializers.CharField(
        required=False, allow_blank=True, max_length=REUSE_TEXT_MAX_CHARS
    )
    module = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The module being edited: its own versions are left out, its brand applies.",
    )
    k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=5)
    brand = serializers.CharField(required=False, help_text="Only this brand's modules (slug).")
    market = serializers.CharField(required=False, help_text="Only this market's modules (code).")

    def validate(self, attrs: dict) -> dict:
        fields = [name for name in CONTENT_FIELDS if name in attrs]
        given = ("text" in attrs) + ("version" in attrs) + bool(fields)
        if given != 1:
            raise serializers.ValidationError(
                {
                    "text": [
                        "Give exactly one of text, version, or the module fields "
                        "(headline, body, key_message, call_to_action)."
                    ]
                }
            )
        if fields:
            attrs["text"] = embedding_text_of(*(attrs.get(name, "") for name in CONTENT_FIELDS))
            if len(attrs["text"]) > REUSE_TEXT_MAX_CHARS:
                raise serializers.ValidationError(
                    {
                        "body": [
                            f"Ensure the fields together have at most "
                            f"{REUSE_TEXT_MAX_CHARS} characters."
                        ]
                    }
                )
        if "text" in attrs and not attrs["text"].strip():
            raise serializers.ValidationError(
                {_blank_field(fields): ["Write some text to compare."]}
            )
        if "module" in attrs and "version" in attrs:
            raise serializers.ValidationError(
                {"module": ["Give module with text or the module fields, not with version."]}
            )
        return attrs


class FigureDifferenceSerializer(serializers.Serializer):
    draft = serializers.CharField(help_text="A figure the text states, as written.")
    approved = serializers.CharField(
        allow_null=True, help_text="The approved module's figure of the same unit it replaced."
    )


class SimilarItemSerializer(serializers.Serializer):
    module = serializers.IntegerField()
    version = serializers.IntegerField()
    number = serializers.IntegerField()
    title = serializers.CharField()
    headline = serializers.CharField()
    key_message = serializers.CharField()
    brand = serializers.CharField()
    market = serializers.CharField()
    similarity = serializers.FloatField(help_text="Cosine similarity of the module texts.")
    percent = serializers.IntegerField(help_text="The similarity as a whole percentage.")
    new_claim = serializers.BooleanField(
        help_text="Similar text stating other figures (numbers, percentages, doses, p-values)."
    )
    differences = FigureDifferenceSerializer(many=True)


class NoveltySerializer(serializers.Serializer):
    is_novel = serializers.BooleanField(help_text="True unless the verdict is known.")
    verdict = serializers.ChoiceField(choices=["known", "numbers_differ", "novel"])
    summary = serializers.CharField(help_text="The verdict in words.")
    similarity = serializers.FloatField()
    percent = serializers.IntegerField()
    threshold = serializers.FloatField()
    module = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    key_message = serializers.CharField(allow_null=True)
    differences = FigureDifferenceSerializer(many=True)


class SimilarResponseSerializer(serializers.Serializer):
    items = SimilarItemSerializer(many=True)
    novelty = NoveltySerializer()


def _differences(match: reuse.Match | None) -> list[dict]:
    if match is None:
        return []
    return [{"draft": d.draft, "approved": d.approved} for d in match.differences]


def _similar_item(match: reuse.Match) -> dict:
    version = match.version
    return {
        "module": version.module_id,
        "version": version.pk,
        "number": version.number,
        "title": version.title,
        "headline": version.headline,
        "key_message": version.key_message,
        "brand": version.module.brand.slug,
        "market": version.module.market.code,
        "similarity": round(match.score, 4),
        "percent": match.percent,
        "new_claim": match.new_claim,
        "differences": _differences(match),
    }


def reuse_body(found: reuse.Reuse) -> dict:
    """The JSON of a ``Reuse``: what the API answers and the authoring form renders."""
    match = found.match
    return {
        "items": [_similar_item(m) for m in found.matches],
        "novelty": {
            "is_novel": found.verdict != "known",
            "verdict": found.verdict,
            "summary": found.summary(),
            "similarity": round(match.score, 4) if match else 0.0,
            "percent": match.percent if match else 0,
            "threshold": found.threshold,
            "module": match.version.module_id if match else None,
            "version": match.version.pk if match else None,
            "key_message": match.version.key_message if match else None,
            "differences": _differences(match),
        },
    }


class SimilarModulesView(APIView):
    """Approved modules most similar to a text or a version, and whether its claim is new."""

    permission_classes = [CanUseReuseFinder]

    @extend_schema(
        operation_id="modules_similar_create",
        request=SimilarRequestSerializer,
        responses={200: SimilarResponseSerializer, 400: ErrorsSerializer, 404: ErrorsSerializer},
        description=(
            "Cosine similarity of the module text (headline, body, key message, call to "
            "action) with the stored embeddings of approved, unexpired versions: the one "
            "score the library and review pages show. A close module that states other "
            "figures (numbers, percentages, doses, p-values) is a new claim "
            "(`new_claim`, verdict `numbers_differ`), not a near-duplicate. The authoring "
            "form calls this as the author types (send the fields and, when editing, "
            "`module`)."
        ),
    )
    def post(self, request: Request) -> Response:
        params = SimilarRequestSerializer(data=_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        version = None
        brand, market = data.get("brand"), data.get("market")
        exclude_module_id = None
        if "version" in data:
            version = (
                ModuleVersion.objects.select_related("module__brand")
                .filter(pk=data["version"])
                .first()
            )
            if version is None:
                raise NotFound(f"No version {data['version']}.", field="version")
        if "module" in data:
            module = Module.objects.select_related("brand").filter(pk=data["module"]).first()
            if module is None:
                raise NotFound(f"No module {data['module']}.", field="module")
            brand, exclude_module_id = brand or module.brand, module.pk
        found = reuse.find_reuse(
            text=None if version else data["text"],
            version=version,
            k=data["k"],
            brand=brand,
            market=market,
            exclude_module_id=exclude_module_id,
        )
        return Response(reuse_body(found))
