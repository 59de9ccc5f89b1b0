"""The engine's delivery endpoints: recommendations, approved content, and a ping.

Views validate the body's shape with a serializer, call the actions in
``services.py`` and render their result; every rule lives in those actions.
"""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.scopes import ANY_TOKEN, TokenHasScope
from content_modules.affinity.models import EventType
from content_modules.errors import InvalidInput
from content_modules.library.api import FilterFriendlyNegotiation
from content_modules.library.models import VersionStatus
from contentapp.api import ErrorSerializer as ErrorsSerializer
from contentapp.api import Pagination
from contentapp.parsers import SizeLimitedJSONParser

from . import changes, idempotency, services
from .catalogue import Candidate

_ERRORS = {
    401: OpenApiResponse(ErrorsSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorsSerializer, description="The role may not do this."),
}


class CanRecommend(BasePermission):
    message = "Only the engine service account or an admin may do this."

    def has_permission(self, request, view) -> bool:
        return services.can_recommend(request.user)


class CanReadContent(BasePermission):
    message = "Your role may not read approved content."

    def has_permission(self, request, view) -> bool:
        return services.can_read_content(request.user)


# --- serializers (validation of shapes, and the schema) ----------------------------------


# Component "RecommendationRequest" (request components get "Request" appended, not twice).
@extend_schema_serializer(component_name="Recommendation")
class RecommendationRequestSerializer(serializers.Serializer):
    hcp = serializers.CharField(max_length=64, help_text="The HCP's external id.")
    channel = serializers.CharField(max_length=32, required=False, allow_null=True)
    k = serializers.IntegerField(required=False, default=5, min_value=1, max_value=services.MAX_K)
    brand = serializers.CharField(max_length=64, required=False, allow_null=True)
    market = serializers.CharField(max_length=16, required=False, allow_null=True)
    slots = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        max_length=services.MAX_K,
        help_text="Message tags: the best approved variant for each, in this order.",
    )
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        required=False,
        max_length=10_000,
        help_text="Module ids never to recommend.",
    )
    explore = serializers.BooleanField(required=False, default=False)
    context = serializers.DictField(  # type: ignore[assignment]  # the API field name
        required=False,
        help_text="Free context, logged; 'specialty' and 'segment' give an unknown HCP's priors.",
    )
    request_id = serializers.RegexField(
        idempotency.KEY_RE,
        max_length=255,
        required=False,
        help_text="An idempotency key, as the Idempotency-Key header (either; same if both): "
        "a retry with it answers the first answer and logs nothing new.",
    )


_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PLAIN_SLUG = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLAIN_TEXT = {"channel": 32, "brand": 64, "market": 16}


def _plain_int(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def plainly_valid_request(data) -> dict | None:
    """The serializer's validated data for a body that is plainly valid, or None.

    Recommendations are the hot path and a DRF serializer costs about a
    millisecond to build and run; most bodies are plainly valid (ids and
    slugs, small ints, lists of them), so those are checked directly. For
    every body this accepts, ``RecommendationRequestSerializer`` gives the
    same validated data (a property test holds the two equal); anything else
    (None here) goes through the serializer, which names the problem.
    """
    if type(data) is not dict or not set(data) <= _REQUEST_FIELDS:
        return None
    hcp = data.get("hcp")
    if type(hcp) is not str or not _PLAIN_ID.fullmatch(hcp):
        return None
    out: dict = {"hcp": hcp, "k": 5, "explore": False}
    for name, limit in _PLAIN_TEXT.items():
        if name in data:
            value = data[name]
            if value is not None and (
                type(value) is not str or len(value) > limit or not _PLAIN_SLUG.fullmatch(value)
            ):
                return None
            out[name] = value
    if "k" in data:
        if not _plain_int(data["k"], 1, services.MAX_K):
            return None
        out["k"] = data["k"]
    if "slots" in data:
        slots = data["slots"]
        if slots is not None and (
            type(slots) is not list
            or len(slots) > services.MAX_K
            or not all(type(v) is str and _PLAIN_SLUG.fullmatch(v) for v in slots)
        ):
            return None
        out["slots"] = None if slots is None else list(slots)
    return out if plain_shared_fields(data, out) else None


def plain_shared_fields(data: dict, out: dict) -> bool:
    """The fields recommendations and next best actions share (exclude, explore,
    context, request_id): copied into ``out`` when plainly valid; False otherwise."""
    if "exclude" in data:
        exclude = data["exclude"]
        if type(exclude) is not list or len(exclude) > 10_000:
            return False
        if not all(_plain_int(v, 1, 2**62) for v in exclude):
            return False
        out["exclude"] = list(exclude)
    if "explore" in data:
        if type(data["explore"]) is not bool:
            return False
        out["explore"] = data["explore"]
    if "context" in data:
        context = data["context"]
        if type(context) is not dict or not all(type(key) is str for key in context):
            return False
        out["context"] = dict(context)
    if "request_id" in data:
        key = data["request_id"]
        if type(key) is not str or not idempotency.KEY_RE.fullmatch(key):
            return False
        out["request_id"] = key
    return True


_REQUEST_FIELDS = frozenset(RecommendationRequestSerializer._declared_fields)


class TagsSerializer(serializers.Serializer):
    message = serializers.CharField()
    theme = serializers.ListField(child=serializers.CharField())
    tonality = serializers.CharField()
    format = serializers.CharField()


class ContentObjectSerializer(serializers.Serializer):
    title = serializers.CharField()
    headline = serializers.CharField()
    body = serializers.CharField()
    key_message = serializers.CharField()
    call_to_action = serializers.CharField()
    image_url = serializers.CharField(allow_null=True)
    image_alt = serializers.CharField(
        allow_null=True,
        help_text="The image's alt text (the headline unless written); null without an image.",
    )
    tags = TagsSerializer()
    channels = serializers.ListField(child=serializers.CharField())
    brand = serializers.CharField()
    market = serializers.CharField()


class ExplanationSerializer(serializers.Serializer):
    message = serializers.FloatField()
    theme = serializers.FloatField()
    tonality = serializers.FloatField()
    format = serializers.FloatField()
    semantic = serializers.FloatField()
    baseline = serializers.FloatField()


class RecommendationItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    slot = serializers.CharField(allow_null=True)
    module = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version number.")
    version_id = serializers.IntegerField()
    score = serializers.FloatField(help_text="Calibrated probability of a positive engagement.")
    propensity = serializers.FloatField(
        help_text="Probability the policy chose this item at this rank, given the ranks above."
    )
    explored = serializers.BooleanField()
    frequency_capped = serializers.BooleanField(
        help_text="Delivered within the frequency-cap window; shown as nothing else qualified."
    )
    explanation = ExplanationSerializer()
    drivers = serializers.ListField(child=serializers.CharField())
    approval_expires_on = serializers.DateField(allow_null=True)
    content = ContentObjectSerializer()


class ExperimentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The experiment (GET /experiments/{id}).")
    arm = serializers.CharField(help_text="The arm the HCP follows, or 'holdout'.")


class RecommendationSerializer(serializers.Serializer):
    recommendation_id = serializers.UUIDField()
    model_version = serializers.CharField(allow_null=True)
    hcp = serializers.CharField()
    policy = serializers.CharField()
    cold_start = serializers.BooleanField(
        help_text="The HCP is unknown or has no history: scores are group priors or popularity."
    )
    fallback = serializers.BooleanField(help_text="No trained model: smoothed popularity.")
    reason = serializers.CharField(allow_null=True, help_text="Why items are empty, if known.")
    unfilled_slots = serializers.ListField(child=serializers.CharField())
    experiment = ExperimentRefSerializer(
        allow_null=True, help_text="The experiment arm this answer followed; null outside one."
    )
    items = RecommendationItemSerializer(many=True)


class LoggedEventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=EventType.choices)
    occurred_at = serializers.DateTimeField()
    channel = serializers.CharField(allow_null=True, help_text="Null when the event named none.")
    dwell_seconds = serializers.FloatField(allow_null=True)


class LoggedRequestSerializer(serializers.Serializer):
    """The request as the recommendation log kept it (defaults filled in)."""

    hcp = serializers.CharField()
    channel = serializers.CharField(allow_null=True, required=False, help_text="Recommendations.")
    channels = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Next best actions."
    )
    horizon_hours = serializers.IntegerField(required=False, help_text="Next best actions.")
    k = serializers.IntegerField()
    brand = serializers.CharField(allow_null=True)
    market = serializers.CharField(allow_null=True)
    slots = serializers.ListField(
        child=serializers.CharField(), allow_null=True, required=False, help_text="Recommendations."
    )
    exclude = serializers.ListField(child=serializers.IntegerField())
    explore = serializers.BooleanField()
    context = serializers.DictField(help_text="The free context, as sent.")  # type: ignore[assignment]


class LoggedItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    slot = serializers.CharField(allow_null=True)
    module = serializers.IntegerField()
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()
    score = serializers.FloatField()
    propensity = serializers.FloatField()
    explored = serializers.BooleanField()
    frequency_capped = serializers.BooleanField()
    channel = serializers.CharField(allow_null=True, help_text="Next best actions: the channel.")
    send_at = serializers.DateTimeField(allow_null=True, help_text="Next best actions: when.")
    events = LoggedEventSerializer(many=True)


class LoggedRecommendationSerializer(serializers.Serializer):
    recommendation_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["recommendation", "next_best_action"])
    hcp = serializers.CharField()
    created_at = serializers.DateTimeField()
    model_version = serializers.CharField(allow_null=True)
    policy = serializers.CharField()
    cold_start = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    experiment = ExperimentRefSerializer(allow_null=True)
    request = LoggedRequestSerializer()
    items = LoggedItemSerializer(many=True)
    unmatched_events = LoggedEventSerializer(many=True)


class ApprovedContentSerializer(serializers.Serializer):
    module = serializers.IntegerField()
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()
    approved_at = serializers.DateTimeField(allow_null=True)
    approval_expires_on = serializers.DateField(allow_null=True)
    content = ContentObjectSerializer()


class PingSerializer(serializers.Serializer):
    ok = serializers.BooleanField()


def _sent_bytes(request: Request) -> int | None:
    """The body's declared size (Content-Length), None when not declared."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _base_url(request: Request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def experiment_ref(rec) -> dict | None:
    """The answer's ``experiment`` member: the arm followed, or None outside experiments."""
    return {"id": rec.experiment_id, "arm": rec.arm} if rec.experiment_id else None


def content_as_dict(candidate: Candidate, base_url: str) -> dict:
    return {
        "module": candidate.module_id,
        "version": candidate.number,
        "version_id": candidate.version_id,
        "approved_at": candidate.approved_at,
        "approval_expires_on": candidate.expires_on,
        "content": candidate.content_for(base_url),
    }


# --- examples (the /api/docs/ page and generated clients show them) ---------------------

EXAMPLE_CONTENT = {
    "title": "CardioZen outcomes",
    "headline": "Fewer cardiac events",
    "body": "In the pivotal trial, 24% fewer major cardiac events.",
    "key_message": "24% fewer major cardiac events",
    "call_to_action": "Read the study",
    "image_url": "https://content.example.com/api/v1/images/7/web",
    "image_alt": "Bar chart: 24% fewer major cardiac events than placebo",
    "tags": {
        "message": "efficacy",
        "theme": ["outcomes"],
        "tonality": "empathetic",
        "format": "infographic",
    },
    "channels": ["email", "web"],
    "brand": "cardiozen",
    "market": "UK",
}
EXAMPLE_APPROVED = {
    "module": 42,
    "version": 3,
    "version_id": 117,
    "approved_at": "2026-11-02T14:05:00Z",
    "approval_expires_on": "2027-06-30",
    "content": EXAMPLE_CONTENT,
}
_EXAMPLE_ID = "5b0e8f5e-4c1d-4d8e-9a57-0c4e6f1b2a10"
EXAMPLE_RECOMMENDATION_REQUEST = {
    "hcp": "HCP-123",
    "channel": "email",
    "k": 5,
    "brand": "cardiozen",
    "market": "UK",
    "slots": ["efficacy", "safety"],
    "exclude": [17, 23],
    "explore": True,
    "context": {"journey_stage": "trial"},
}
_EXAMPLE_ITEM = {
    "rank": 1,
    "slot": "efficacy",
    "module": 42,
    "version": 3,
    "version_id": 117,
    "score": 0.173,
    "propensity": 0.91,
    "explored": False,
    "frequency_capped": False,
}
EXAMPLE_RECOMMENDATION = {
    "recommendation_id": _EXAMPLE_ID,
    "model_version": "2026-11-22T10:00:00Z#17",
    "hcp": "HCP-123",
    "policy": "epsilon-greedy(0.1)",
    "cold_start": False,
    "fallback": False,
    "reason": None,
    "unfilled_slots": ["safety"],
    "experiment": {"id": 7, "arm": "B"},
    "items": [
        {
            **_EXAMPLE_ITEM,
            "explanation": {
                "message": 0.05,
                "theme": 0.02,
                "tonality": 0.04,
                "format": 0.01,
                "semantic": 0.06,
                "baseline": -2.1,
            },
            "drivers": ["prefers empathetic tone", "engaged with efficacy content"],
            "approval_expires_on": "2027-06-30",
            "content": EXAMPLE_CONTENT,
        }
    ],
}
EXAMPLE_LOGGED = {
    "recommendation_id": _EXAMPLE_ID,
    "kind": "recommendation",
    "hcp": "HCP-123",
    "created_at": "2026-11-23T08:00:00Z",
    "model_version": "2026-11-22T10:00:00Z#17",
    "policy": "epsilon-greedy(0.1)",
    "cold_start": False,
    "reason": None,
    "experiment": {"id": 7, "arm": "B"},
    "request": {**EXAMPLE_RECOMMENDATION_REQUEST, "context": {"journey_stage": "trial"}},
    "items": [
        {
            **_EXAMPLE_ITEM,
            "channel": None,
            "send_at": None,
            "events": [
                {
                    "event_id": "0f7a5c8e-2b1d-4e3f-8a9b-1c2d3e4f5a6b",
                    "type": "opened",
                    "occurred_at": "2026-11-23T09:15:00Z",
                    "channel": "email",
                    "dwell_seconds": None,
                }
            ],
        }
    ],
    "unmatched_events": [],
}


# --- views -------------------------------------------------------------------------------


class RecommendationsView(APIView):
    """Ranked approved content for one HCP."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanRecommend]
    required_scopes = {"POST": "recommend"}
    # JSON only (API.md): a multipart body of thousands of fields made Django stop
    # reading mid-upload (TooManyFieldsSent) and the client saw a reset connection.
    parser_classes = [SizeLimitedJSONParser]

    @extend_schema(
        operation_id="recommendations_create",
        summary="Ranked approved content for one HCP",
        request=RecommendationRequestSerializer,
        parameters=[idempotency.SCHEMA_PARAMETER],
        examples=[
            OpenApiExample(
                "Two slots, exploring", value=EXAMPLE_RECOMMENDATION_REQUEST, request_only=True
            ),
            OpenApiExample("Answer", value=EXAMPLE_RECOMMENDATION, response_only=True),
        ],
        responses={
            200: RecommendationSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Bad input, naming the field."),
            422: OpenApiResponse(
                ErrorsSerializer, description="The idempotency key was used for another body."
            ),
            **_ERRORS,
        },
        description=(
            "Only versions approved now, unexpired, for the requested channel, brand and market "
            "are scored. With `slots`, the best approved variant per message slot in slot order; "
            "otherwise the top `k`. `explore: true` uses epsilon-greedy exploration and logs the "
            "propensity of every item; events that carry `recommendation_id` join to the items."
        ),
    )
    def post(self, request: Request) -> Response:
        data = plainly_valid_request(request.data)
        if data is None:  # anything unusual: the serializer decides and names the problem
            serializer = RecommendationRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        key = idempotency.key_from(request, data.get("request_id"))
        req = services.RecommendationRequest(
            hcp=data["hcp"],
            channel=data.get("channel"),
            k=data.get("k", 5),
            brand=data.get("brand"),
            market=data.get("market"),
            slots=data.get("slots"),
            exclude=data.get("exclude") or [],
            explore=data.get("explore", False),
            context=data.get("context") or {},
            sent_bytes=_sent_bytes(request),
        )
        base_url = _base_url(request)

        def compute() -> tuple[int, dict]:
            result = services.recommendation_create(actor=request.user, req=req, base_url=base_url)
            rec = result.recommendation
            return 200, {
                "recommendation_id": rec.pk,
                "model_version": rec.model_version or None,
                "hcp": rec.hcp_external_id,
                "policy": rec.policy,
                "cold_start": rec.cold_start,
                "fallback": result.fallback,
                "reason": rec.reason or None,
                "unfilled_slots": result.unfilled_slots,
                "experiment": experiment_ref(rec),
                "items": result.items,
            }

        if key is None:  # the hot path: no claim, no transaction
            return Response(compute()[1])
        body = {k: v for k, v in data.items() if k != "request_id"}
        outcome = idempotency.run(
            actor=request.user, scope="recommendations", key=key, body=body, compute=compute
        )
        return idempotency.response(outcome)


class RecommendationDetailView(APIView):
    """One logged recommendation joined to the events that carry its id."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanRecommend]
    required_scopes = {"GET": "recommend"}

    @extend_schema(
        operation_id="recommendations_retrieve",
        summary="One logged recommendation with the events that joined it",
        examples=[OpenApiExample("Logged answer", value=EXAMPLE_LOGGED, response_only=True)],
        responses={
            200: LoggedRecommendationSerializer,
            404: OpenApiResponse(ErrorsSerializer, description="No such recommendation."),
            **_ERRORS,
        },
    )
    def get(self, request: Request, recommendation_id) -> Response:
        return Response(
            services.recommendation_get(actor=request.user, recommendation_id=recommendation_id)
        )


_FILTER_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=text)
    for name, text in (
        ("channel", "Channel slug, e.g. email"),
        ("brand", "Brand slug"),
        ("market", "Market code, e.g. UK"),
        ("message", "Message tag slug"),
        ("theme", "Theme tag slug"),
        ("tonality", "Tonality tag slug"),
        ("format", "Format tag slug"),
    )
]


TOMBSTONE_STATUSES = [
    *(s for s in VersionStatus.values if s != VersionStatus.APPROVED),
    "deleted",
]


class ContentTombstoneSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=TOMBSTONE_STATUSES,
        help_text="The status the version left approval for ('expired' also when its date "
        "ran out before the expiry job ran; 'deleted' when the row was deleted).",
    )
    module = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version number.")
    version_id = serializers.IntegerField()
    changed_at = serializers.DateTimeField(help_text="When it stopped being approved.")


class ContentPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="How many items the content list holds now for these filters (with "
        "changed_since: the size of an exact copy once has_more is false)."
    )
    next = serializers.URLField(allow_null=True, help_text="The next page's URL, if any.")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page's URL (page numbers only)."
    )
    results = ApprovedContentSerializer(
        many=True,
        help_text="Approved, unexpired items. With changed_since: approvals to store under "
        "their module (replacing what it held).",
    )
    tombstones = ContentTombstoneSerializer(
        many=True,
        help_text="With changed_since: versions that left approval; drop a module's entry "
        "if it holds that version_id, before storing this page's results. Empty otherwise.",
    )
    next_cursor = serializers.CharField(
        help_text="Pass as changed_since to get what changed after this answer (keep the "
        "first page's when reading the list by page numbers)."
    )
    has_more = serializers.BooleanField(help_text="More waits: follow next at once.")


EXAMPLE_PAGE = {
    "count": 120,
    "next": "https://content.example.com/api/v1/content?page=2&page_size=1",
    "previous": None,
    "results": [EXAMPLE_APPROVED],
    "tombstones": [],
    "next_cursor": "311.20261202.0",
    "has_more": True,
}
EXAMPLE_SYNC_PAGE = {
    "count": 120,
    "next": None,
    "previous": None,
    "results": [{**EXAMPLE_APPROVED, "version": 4, "version_id": 131}],
    "tombstones": [
        {
            "status": "superseded",
            "module": 42,
            "version": 3,
            "version_id": 117,
            "changed_at": "2026-12-02T10:00:00Z",
        },
        {
            "status": "withdrawn",
            "module": 17,
            "version": 2,
            "version_id": 61,
            "changed_at": "2026-12-02T11:30:00Z",
        },
    ],
    "next_cursor": "318.20261202.0",
    "has_more": False,
}


class ContentListView(APIView):
    """Approved, unexpired versions, paginated; with changed_since, what changed since."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanReadContent]
    required_scopes = {"GET": "content:read"}
    content_negotiation_class = FilterFriendlyNegotiation
    pagination_class = Pagination

    @extend_schema(
        operation_id="content_list",
        summary="Approved, unexpired content (paginated, filtered), or its changes since a cursor",
        description=(
            "Without `changed_since`: the list by page numbers, with a `next_cursor` read "
            "before the page. With `changed_since`: cursor pages for keeping an exact local "
            "copy. `changed_since=0` walks the whole list by module id (no item slips between "
            "pages, whatever changes meanwhile), then continues with what changed; every "
            "later answer holds the approvals since the cursor in `results` and `tombstones` "
            "for versions withdrawn, expired (by the job or by date), superseded or otherwise "
            "out of approval. Apply a page's tombstones (drop a module's entry if it holds "
            "that `version_id`), then its results (store under `module`); keep `next_cursor`; "
            "follow `next` while `has_more`, then poll or wait for a webhook "
            "(README: Content sync)."
        ),
        examples=[
            OpenApiExample("A page", value=EXAMPLE_PAGE, response_only=True),
            OpenApiExample("Changes since a cursor", value=EXAMPLE_SYNC_PAGE, response_only=True),
        ],
        parameters=[
            *_FILTER_PARAMETERS,
            OpenApiParameter(
                "changed_since",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description="0 for a full listing by cursor, else an earlier answer's "
                "next_cursor. Not with page.",
            ),
            OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses={
            200: ContentPageSerializer,
            400: OpenApiResponse(
                ErrorsSerializer,
                description="Unknown filter value, malformed changed_since or page_size.",
            ),
            404: OpenApiResponse(ErrorsSerializer, description="No such page."),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        if "changed_since" in request.query_params:
            return self._changes(request, paginator)
        candidates, cursor = services.content_list_with_cursor(
            actor=request.user, filters=request.query_params
        )
        # Page-number pagination slices any sequence (the stubs say querysets only).
        page: list[Candidate] = paginator.paginate_queryset(candidates, request, view=self) or []  # type: ignore[arg-type]
        base = _base_url(request)
        assert paginator.page is not None
        next_url = paginator.get_next_link()
        return Response(
            {
                "count": paginator.page.paginator.count,
                "next": next_url,
                "previous": paginator.get_previous_link(),
                "results": [content_as_dict(c, base) for c in page],
                "tombstones": [],
                "next_cursor": cursor,
                "has_more": next_url is not None,
            }
        )

    def _changes(self, request: Request, paginator: Pagination) -> Response:
        if paginator.page_query_param in request.query_params:
            raise InvalidInput(
                "Page numbers do not go with changed_since: follow next instead.", field="page"
            )
        limit = paginator.get_page_size(request) or paginator.max_page_size
        page = services.content_sync(
            actor=request.user,
            filters=request.query_params,
            cursor=request.query_params["changed_since"],
            limit=limit,
        )
        next_url = None
        if page.has_more:
            query = request.query_params.copy()
            query["changed_since"] = page.cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        base = _base_url(request)
        return Response(
            {
                "count": page.count,
                "next": next_url,
                "previous": None,
                "results": [content_as_dict(c, base) for c in page.approvals],
                "tombstones": [
                    {
                        "status": t.status,
                        "module": t.module_id,
                        "version": t.number,
                        "version_id": t.version_id,
                        "changed_at": t.changed_at,
                    }
                    for t in page.tombstones
                ],
                "next_cursor": page.cursor,
                "has_more": page.has_more,
            }
        )


class ContentDetailView(APIView):
    """The approved version of one module."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanReadContent]
    required_scopes = {"GET": "content:read"}

    @extend_schema(
        operation_id="content_retrieve",
        summary="The version of one module approved now",
        examples=[OpenApiExample("Approved", value=EXAMPLE_APPROVED, response_only=True)],
        responses={
            200: ApprovedContentSerializer,
            404: OpenApiResponse(ErrorsSerializer, description="None approved now."),
            **_ERRORS,
        },
    )
    def get(self, request: Request, module: int) -> Response:
        candidate = services.content_get(actor=request.user, module_id=module)
        return Response(content_as_dict(candidate, _base_url(request)))


class ContentChangeSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="'approved' (store the content under the module), or a tombstone: "
        "'withdrawn', 'expired', 'superseded', 'deleted' (drop the module's entry if it "
        "holds this version_id)."
    )
    module = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version number.")
    version_id = serializers.IntegerField()
    changed_at = serializers.DateTimeField()
    approved_at = serializers.DateTimeField(allow_null=True, help_text="Approvals only.")
    approval_expires_on = serializers.DateField(
        allow_null=True, help_text="Approvals only: stop serving it after this date."
    )
    content = ContentObjectSerializer(allow_null=True, help_text="Approvals only.")


class ContentChangesSerializer(serializers.Serializer):
    changes = ContentChangeSerializer(many=True)
    cursor = serializers.CharField(
        help_text="Pass as changed_since next time (store it with the local copy)."
    )
    has_more = serializers.BooleanField(help_text="More changes wait: ask again at once.")
    next = serializers.CharField(allow_null=True, help_text="The next page's URL, if has_more.")


EXAMPLE_CHANGES = {
    "changes": [
        {
            "type": "approved",
            "module": 42,
            "version": 3,
            "version_id": 118,
            "changed_at": "2026-11-22T10:00:00Z",
            "approved_at": "2026-11-22T10:00:00Z",
            "approval_expires_on": "2027-06-30",
            "content": EXAMPLE_APPROVED["content"],
        },
        {
            "type": "withdrawn",
            "module": 17,
            "version": 2,
            "version_id": 61,
            "changed_at": "2026-11-22T11:30:00Z",
            "approved_at": None,
            "approval_expires_on": None,
            "content": None,
        },
    ],
    "cursor": "311",
    "has_more": False,
    "next": None,
}


class ContentChangesView(APIView):
    """Approvals and tombstones since a cursor: how an engine keeps an exact local copy."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanReadContent]
    required_scopes = {"GET": "content:read"}
    content_negotiation_class = FilterFriendlyNegotiation

    @extend_schema(
        operation_id="content_changes_list",
        summary="Deprecated: use GET /api/v1/content?changed_since=",
        deprecated=True,
        description=(
            "Deprecated in favour of `GET /api/v1/content?changed_since=<cursor>`, which "
            "also tombstones versions whose date ran out before the expiry job ran. Replay "
            "from `changed_since=0`, then pass the `cursor` of each answer. Apply in order: "
            "`approved` stores the content under its module; any other type drops the "
            "module's entry if it holds that `version_id`. Also stop serving an entry past "
            "its `approval_expires_on`. Every change is answered exactly once, in an order "
            "no later commit can precede (README: Content sync)."
        ),
        examples=[OpenApiExample("Two changes", value=EXAMPLE_CHANGES, response_only=True)],
        parameters=[
            OpenApiParameter(
                "changed_since",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                description="0 for the start, else the cursor of the last answer.",
            ),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                OpenApiParameter.QUERY,
                description=f"Changes per page (default {changes.DEFAULT_LIMIT}, "
                f"at most {changes.MAX_LIMIT}).",
            ),
        ],
        responses={
            200: ContentChangesSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Malformed cursor or limit."),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        raw_limit = request.query_params.get("limit", str(changes.DEFAULT_LIMIT))
        if not (raw_limit.isascii() and raw_limit.isdigit()) or len(raw_limit) > 6:
            raise InvalidInput(f"Between 1 and {changes.MAX_LIMIT}.", field="limit")
        page = services.content_changes(
            actor=request.user,
            cursor=request.query_params.get("changed_since"),
            limit=int(raw_limit),
        )
        base = _base_url(request)
        next_url = None
        if page.has_more:
            query = request.query_params.copy()
            query["changed_since"] = page.cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(
            {
                "changes": [
                    {
                        "type": c.kind,
                        "module": c.module_id,
                        "version": c.number,
                        "version_id": c.version_id,
                        "changed_at": c.changed_at,
                        "approved_at": c.candidate.approved_at if c.candidate else None,
                        "approval_expires_on": c.candidate.expires_on if c.candidate else None,
                        "content": c.candidate.content_for(base) if c.candidate else None,
                    }
                    for c in page.changes
                ],
                "cursor": page.cursor,
                "has_more": page.has_more,
                "next": next_url,
            }
        )


class PingView(APIView):
    """A trivial authenticated endpoint: the framework's floor in the delivery benchmark."""

    permission_classes = [IsAuthenticated]
    required_scopes = {"GET": ANY_TOKEN}

    @extend_schema(
        operation_id="ping_retrieve",
        summary="Check the token: answers ok",
        responses={200: PingSerializer, **_ERRORS},
        examples=[OpenApiExample("Ok", value={"ok": True}, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        return Response({"ok": True}, status=status.HTTP_200_OK)
