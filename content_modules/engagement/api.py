"""Engagement endpoints: an HCP's engagement profile and next best actions (API.md)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.scopes import TokenHasScope
from content_modules.delivery import idempotency
from content_modules.delivery.api import (
    _PLAIN_ID,
    _PLAIN_SLUG,
    EXAMPLE_CONTENT,
    CanRecommend,
    ContentObjectSerializer,
    ExperimentRefSerializer,
    _base_url,
    _plain_int,
    _sent_bytes,
    experiment_ref,
    plain_shared_fields,
)
from contentapp.api import ErrorSerializer
from contentapp.parsers import SizeLimitedJSONParser

from . import actions

_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="The role may not do this."),
}


# --- the engagement profile ---------------------------------------------------------------


class SlotSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(help_text="0 is Monday, in the HCP's time zone.")
    hour = serializers.IntegerField(help_text="Local hour, 0-23.")
    score = serializers.FloatField(help_text="Predicted open probability.")


class SendTimeSerializer(serializers.Serializer):
    timezone = serializers.CharField(help_text="The IANA zone local times are read in.")
    by_hour = serializers.ListField(
        child=serializers.FloatField(), help_text="Open probability per local hour 0-23."
    )
    by_weekday = serializers.ListField(
        child=serializers.FloatField(), help_text="Open probability per weekday, Monday first."
    )
    best = SlotSerializer(many=True, help_text="The three best (weekday, hour) slots.")


class FrequencySerializer(serializers.Serializer):
    touches_last_7_days = serializers.IntegerField()
    touches_last_28_days = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["undersaturated", "on_target", "saturated"])
    recommended_per_week = serializers.FloatField()


class MicrosegmentRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # the API field name


class EngagementProfileSerializer(serializers.Serializer):
    hcp = serializers.CharField()
    model_version = serializers.CharField(
        allow_null=True, help_text="The engagement model; null before the first training run."
    )
    n_events = serializers.IntegerField()
    n_deliveries = serializers.IntegerField()
    from_group = serializers.BooleanField(
        help_text="No deliveries yet: every figure is the HCP's specialty x segment group's."
    )
    channels = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Predicted positive-engagement probability per channel, all else average.",
    )
    send_time = SendTimeSerializer()
    frequency = FrequencySerializer()
    microsegment = MicrosegmentRefSerializer(allow_null=True)
    drivers = serializers.ListField(child=serializers.CharField())


EXAMPLE_PROFILE = {
    "hcp": "HCP-123",
    "model_version": "2026-12-01T10:00:00Z#e4",
    "n_events": 58,
    "n_deliveries": 31,
    "from_group": False,
    "channels": {"email": 0.22, "rep_email": 0.31, "web": 0.10},
    "send_time": {
        "timezone": "Europe/London",
        "by_hour": [0.01] * 24,
        "by_weekday": [0.12] * 7,
        "best": [{"weekday": 0, "hour": 8, "score": 0.31}],
    },
    "frequency": {
        "touches_last_7_days": 3,
        "touches_last_28_days": 9,
        "state": "saturated",
        "recommended_per_week": 1.0,
    },
    "microsegment": {"id": "ms-4", "label": "prefers rep email, opens in the morning"},
    "drivers": ["engages most on rep email", "opens early in the morning on weekdays"],
}


class EngagementProfileView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"GET": "hcps:read"}

    @extend_schema(
        operation_id="hcp_engagement_profile_retrieve",
        summary="Channel, send-time, frequency and microsegment of one HCP",
        examples=[OpenApiExample("Profile", value=EXAMPLE_PROFILE, response_only=True)],
        responses={
            200: EngagementProfileSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Malformed external id."),
            404: OpenApiResponse(ErrorSerializer, description="Unknown HCP."),
            **_ERRORS,
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(actions.engagement_profile_get(actor=request.user, external_id=external_id))


# --- next best actions --------------------------------------------------------------------


@extend_schema_serializer(component_name="NextBestAction")
class ActionRequestSerializer(serializers.Serializer):
    hcp = serializers.CharField(max_length=64, help_text="The HCP's external id.")
    channels = serializers.ListField(
        child=serializers.CharField(max_length=32),
        allow_empty=False,
        max_length=actions.MAX_CHANNELS,
        help_text="The channels the engine can use now (slugs).",
    )
    horizon_hours = serializers.IntegerField(
        required=False,
        default=168,
        min_value=actions.MIN_HORIZON_HOURS,
        max_value=actions.MAX_HORIZON_HOURS,
        help_text="How far ahead a send may be scheduled: 1 hour to 30 days.",
    )
    k = serializers.IntegerField(required=False, default=3, min_value=1, max_value=actions.MAX_K)
    brand = serializers.CharField(max_length=64, required=False, allow_null=True)
    market = serializers.CharField(max_length=16, required=False, allow_null=True)
    explore = serializers.BooleanField(required=False, default=False)
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        required=False,
        max_length=10_000,
        help_text="Module ids never to propose.",
    )
    context = serializers.DictField(  # type: ignore[assignment]  # the API field name
        required=False,
        help_text="Free context, logged; 'specialty', 'segment' and 'region' give an unknown "
        "HCP's group.",
    )
    request_id = serializers.RegexField(
        idempotency.KEY_RE,
        max_length=255,
        required=False,
        help_text="An idempotency key, as the Idempotency-Key header.",
    )


_ACTION_FIELDS = frozenset(ActionRequestSerializer._declared_fields)


def plainly_valid_action(data) -> dict | None:
    """The serializer's validated data for a plainly valid body, or None.

    The serializer costs about a millisecond and a half; the common body (an id,
    channel slugs, small ints) is checked directly, as recommendations do
    (``delivery.api.plainly_valid_request``). For every body this accepts, the
    serializer gives the same validated data (a property test holds them equal).
    """
    if type(data) is not dict or not set(data) <= _ACTION_FIELDS:
        return None
    hcp, channels = data.get("hcp"), data.get("channels")
    if type(hcp) is not str or not _PLAIN_ID.fullmatch(hcp):
        return None
    if (
        type(channels) is not list
        or not 1 <= len(channels) <= actions.MAX_CHANNELS
        or not all(type(c) is str and len(c) <= 32 and _PLAIN_SLUG.fullmatch(c) for c in channels)
    ):
        return None
    out: dict = {"hcp": hcp, "channels": list(channels), "horizon_hours": 168, "k": 3}
    out["explore"] = False
    for name, low, high in (
        ("horizon_hours", actions.MIN_HORIZON_HOURS, actions.MAX_HORIZON_HOURS),
        ("k", 1, actions.MAX_K),
    ):
        if name in data:
            if not _plain_int(data[name], low, high):
                return None
            out[name] = data[name]
    for name, limit in (("brand", 64), ("market", 16)):
        if name in data:
            value = data[name]
            if value is not None and (
                type(value) is not str or len(value) > limit or not _PLAIN_SLUG.fullmatch(value)
            ):
                return None
            out[name] = value
    return out if plain_shared_fields(data, out) else None


class ActionSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    channel = serializers.CharField()
    send_at = serializers.DateTimeField(help_text="When to send it (UTC), within the horizon.")
    module = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version number.")
    version_id = serializers.IntegerField()
    score = serializers.FloatField(
        help_text="Engaged probability: content x channel lift x send-time lift."
    )
    propensity = serializers.FloatField(
        help_text="Probability the policy chose this channel, hour and module at this rank."
    )
    explored = serializers.BooleanField()
    frequency_capped = serializers.BooleanField()
    drivers = serializers.ListField(child=serializers.CharField())
    approval_expires_on = serializers.DateField(allow_null=True)
    content = ContentObjectSerializer()


class ActionPlanSerializer(serializers.Serializer):
    recommendation_id = serializers.UUIDField(
        help_text="Events carrying it join to these actions (GET /recommendations/{id})."
    )
    model_version = serializers.CharField(allow_null=True, help_text="The content model.")
    engagement_model_version = serializers.CharField(allow_null=True)
    hcp = serializers.CharField()
    policy = serializers.CharField()
    cold_start = serializers.BooleanField(
        help_text="Unknown HCP or no deliveries yet: channel and timing are the group's."
    )
    hold = serializers.BooleanField()
    hold_reason = serializers.CharField(allow_null=True)
    frequency = FrequencySerializer()
    experiment = ExperimentRefSerializer(
        allow_null=True, help_text="The experiment arm this answer followed; null outside one."
    )
    actions = ActionSerializer(many=True)


EXAMPLE_ACTION_REQUEST = {
    "hcp": "HCP-123",
    "channels": ["email", "rep_email", "web"],
    "horizon_hours": 168,
    "k": 3,
    "brand": "cardiozen",
    "market": "UK",
    "explore": False,
}
EXAMPLE_PLAN = {
    "recommendation_id": "5b0e8f5e-4c1d-4d8e-9a57-0c4e6f1b2a10",
    "model_version": "2026-12-01T10:00:00Z#17",
    "engagement_model_version": "2026-12-01T10:00:00Z#e4",
    "hcp": "HCP-123",
    "policy": "greedy",
    "cold_start": False,
    "hold": False,
    "hold_reason": None,
    "frequency": {
        "touches_last_7_days": 0,
        "touches_last_28_days": 3,
        "state": "undersaturated",
        "recommended_per_week": 1.0,
    },
    "experiment": None,
    "actions": [
        {
            "rank": 1,
            "channel": "rep_email",
            "send_at": "2026-12-02T08:00:00Z",
            "module": 42,
            "version": 3,
            "version_id": 117,
            "score": 0.12,
            "propensity": 1.0,
            "explored": False,
            "frequency_capped": False,
            "drivers": ["opens early in the morning on weekdays", "prefers empathetic tone"],
            "approval_expires_on": "2027-06-30",
            "content": EXAMPLE_CONTENT,
        }
    ],
}


class NextBestActionsView(APIView):
    """What to send to one HCP, on which channel and when."""

    permission_classes = [IsAuthenticated, TokenHasScope, CanRecommend]
    required_scopes = {"POST": "recommend"}
    parser_classes = [SizeLimitedJSONParser]

    @extend_schema(
        operation_id="next_best_actions_create",
        summary="The best (channel, send time, module) actions for one HCP",
        request=ActionRequestSerializer,
        parameters=[idempotency.SCHEMA_PARAMETER],
        examples=[
            OpenApiExample("A week", value=EXAMPLE_ACTION_REQUEST, request_only=True),
            OpenApiExample("Answer", value=EXAMPLE_PLAN, response_only=True),
        ],
        responses={
            200: ActionPlanSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Bad input, naming the field."),
            422: OpenApiResponse(
                ErrorSerializer, description="The idempotency key was used for another body."
            ),
            **_ERRORS,
        },
        description=(
            "Only versions approved now for the channel, brand and market are proposed. "
            "`hold` is true, with no actions, when the HCP is saturated, has unsubscribed from "
            "every requested channel, or the frequency cap allows no send within the horizon. "
            "`explore: true` explores channel, send hour and module (epsilon-greedy) and logs "
            "each action's propensity. Events carrying `recommendation_id` join to the actions."
        ),
    )
    def post(self, request: Request) -> Response:
        data = plainly_valid_action(request.data)
        if data is None:  # anything unusual: the serializer decides and names the problem
            serializer = ActionRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        key = idempotency.key_from(request, data.get("request_id"))
        req = actions.ActionRequest(
            hcp=data["hcp"],
            channels=list(data["channels"]),
            horizon_hours=data.get("horizon_hours", 168),
            k=data.get("k", 3),
            brand=data.get("brand"),
            market=data.get("market"),
            explore=data.get("explore", False),
            exclude=data.get("exclude") or [],
            context=data.get("context") or {},
            sent_bytes=_sent_bytes(request),
        )
        base_url = _base_url(request)

        def compute() -> tuple[int, dict]:
            plan = actions.next_best_actions(actor=request.user, req=req, base_url=base_url)
            rec = plan.recommendation
            return 200, {
                "recommendation_id": rec.pk,
                "model_version": rec.model_version or None,
                "engagement_model_version": plan.engagement_version,
                "hcp": rec.hcp_external_id,
                "policy": rec.policy,
                "cold_start": rec.cold_start,
                "hold": plan.hold_reason is not None,
                "hold_reason": plan.hold_reason,
                "frequency": plan.frequency,
                "experiment": experiment_ref(rec),
                "actions": plan.actions,
            }

        if key is None:
            return Response(compute()[1])
        body = {k: v for k, v in data.items() if k != "request_id"}
        outcome = idempotency.run(
            actor=request.user, scope="next-best-actions", key=key, body=body, compute=compute
        )
        return idempotency.response(outcome)
