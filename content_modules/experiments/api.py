"""Experiments: POST/GET /api/v1/experiments, GET /api/v1/experiments/{id}, stop, archive.

Admins start, stop and archive; the engine and admins read. Views validate
the body's shape and call ``actions``, where every rule lives.
"""

from __future__ import annotations

from django.urls import reverse
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

from content_modules.accounts.scopes import TokenHasScope
from content_modules.errors import InvalidInput
from contentapp.api import ErrorSerializer
from contentapp.parsers import SizeLimitedJSONParser

from . import actions
from .models import Metric, Status

_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="The role may not do this."),
}


class CanReadExperiments(BasePermission):
    message = "Only the engine or administrators may read experiments."

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return actions.can_read(request.user)
        return actions.can_manage(request.user)


class CanManageExperiments(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view) -> bool:
        return actions.can_manage(request.user)


# --- serializers --------------------------------------------------------------------------


class ExperimentArmSpecSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    # A plain string: the action names an unknown policy in its own words (arms.N.policy).
    policy = serializers.CharField(
        max_length=32, help_text="model, random, popularity or fixed (only its modules)."
    )
    modules = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        required=False,
        max_length=actions.MAX_FIXED_MODULES,
        help_text="A fixed arm's module ids (still served only when approved now).",
    )


@extend_schema_serializer(component_name="Experiment")
class ExperimentRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    arms = ExperimentArmSpecSerializer(
        many=True, help_text="At least two; the first is the reference."
    )
    holdout = serializers.FloatField(
        required=False,
        default=0.0,
        help_text="Share of HCPs kept on the plain model, 0 to 0.5 (logged as arm 'holdout').",
    )
    metric = serializers.CharField(
        required=False, default=Metric.CLICK, max_length=16, help_text="click or open."
    )
    brand = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    market = serializers.CharField(max_length=16, required=False, allow_null=True, default=None)
    channel = serializers.CharField(max_length=32, required=False, allow_null=True, default=None)
    microsegment = serializers.CharField(
        max_length=16,
        required=False,
        allow_null=True,
        default=None,
        help_text="Only HCPs of this engagement microsegment (e.g. ms-3); null: any.",
    )
    min_detectable_lift = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Absolute rate difference (0.005 = half a point) for the power figure.",
    )


class ExperimentArmSerializer(serializers.Serializer):
    name = serializers.CharField()
    policy = serializers.CharField()
    modules = serializers.ListField(child=serializers.IntegerField())


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    # A plain string in the schema: another "status" enum would collide in the names.
    status = serializers.CharField(help_text="running, stopped or archived.")
    arms = ExperimentArmSerializer(many=True)
    holdout = serializers.FloatField()
    metric = serializers.CharField()
    brand = serializers.CharField(allow_null=True)
    market = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    microsegment = serializers.CharField(allow_null=True)
    min_detectable_lift = serializers.FloatField(allow_null=True)
    started_at = serializers.DateTimeField()
    stopped_at = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)


def _interval(help_text: str):
    return serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text=help_text,
    )


class ExperimentDayResultSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="UTC day of the deliveries.")
    deliveries = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Deliveries of that day with a success.")
    rate = serializers.FloatField(allow_null=True)
    rate_ci95 = _interval("Wilson, that day alone.")
    cumulative_deliveries = serializers.IntegerField()
    cumulative_clicks = serializers.IntegerField()
    cumulative_rate = serializers.FloatField(allow_null=True)
    cumulative_rate_ci95 = _interval("Wilson, up to that day.")
    cumulative_rate_cs95 = _interval("Always-valid, up to that day.")
    cumulative_lift = serializers.FloatField(allow_null=True)
    cumulative_lift_ci95 = _interval("Newcombe, up to that day; null for the first arm.")
    cumulative_lift_cs95 = _interval("Always-valid, up to that day; null for the first arm.")


class ExperimentArmResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    policy = serializers.CharField()
    modules = serializers.ListField(child=serializers.IntegerField())
    hcps = serializers.IntegerField(help_text="Distinct HCPs served in this arm.")
    recommendations = serializers.IntegerField(help_text="Logged answers in this arm.")
    logged_items = serializers.IntegerField(help_text="Items of those answers.")
    deliveries = serializers.IntegerField(
        help_text="Logged items with a delivered event carrying their recommendation_id."
    )
    clicks = serializers.IntegerField(help_text="Deliveries with a success event (the metric).")
    successes_without_delivery = serializers.IntegerField(
        help_text="Successes on items never reported delivered (not in any rate)."
    )
    rate = serializers.FloatField(allow_null=True)
    rate_ci95 = _interval("Wilson score interval.")
    rate_cs95 = _interval("Always-valid interval (confidence sequence).")
    lift = serializers.FloatField(
        allow_null=True, help_text="Rate minus the first arm's, absolute; null for the first arm."
    )
    lift_ci95 = _interval("Newcombe hybrid score interval.")
    lift_cs95 = _interval("Always-valid interval; the verdict reads it.")
    daily = ExperimentDayResultSerializer(many=True)


class ExperimentPowerSerializer(serializers.Serializer):
    alpha = serializers.FloatField()
    power = serializers.FloatField()
    two_sided = serializers.BooleanField()
    baseline_rate = serializers.FloatField(allow_null=True, help_text="The first arm's rate.")
    min_detectable_lift = serializers.FloatField(allow_null=True)
    sample_size_per_arm = serializers.IntegerField(
        allow_null=True, help_text="Deliveries per arm needed to detect min_detectable_lift."
    )
    deliveries_per_arm_so_far = serializers.IntegerField(help_text="The smallest arm's.")
    enough = serializers.BooleanField(allow_null=True)
    detectable_lift_now = serializers.FloatField(
        allow_null=True, help_text="The lift the deliveries so far detect with that power."
    )


class ExperimentResultsSerializer(ExperimentSerializer):
    arms = ExperimentArmResultSerializer(many=True)  # type: ignore[assignment]
    holdout_results = ExperimentArmResultSerializer(
        allow_null=True, help_text="The holdout (plain model); null without a holdout."
    )
    verdict = serializers.CharField(help_text="One sentence per arm against the first.")
    verdict_basis = serializers.CharField()
    methods = serializers.DictField(child=serializers.CharField())
    power = ExperimentPowerSerializer()
    counting = serializers.CharField(help_text="What a delivery and a click are.")


# --- examples -----------------------------------------------------------------------------

EXAMPLE_REQUEST = {
    "name": "Model vs popularity, CardioZen UK email",
    "arms": [
        {"name": "A", "policy": "model"},
        {"name": "B", "policy": "popularity"},
        {"name": "C", "policy": "fixed", "modules": [42, 43]},
    ],
    "holdout": 0.1,
    "metric": "click",
    "brand": "cardiozen",
    "market": "UK",
    "channel": "email",
    "min_detectable_lift": 0.01,
}
EXAMPLE_EXPERIMENT = {
    "id": 7,
    "name": EXAMPLE_REQUEST["name"],
    "status": "running",
    "arms": [
        {"name": "A", "policy": "model", "modules": []},
        {"name": "B", "policy": "popularity", "modules": []},
        {"name": "C", "policy": "fixed", "modules": [42, 43]},
    ],
    "holdout": 0.1,
    "metric": "click",
    "brand": "cardiozen",
    "market": "UK",
    "channel": "email",
    "microsegment": None,
    "min_detectable_lift": 0.01,
    "started_at": "2026-12-01T09:00:00Z",
    "stopped_at": None,
    "archived_at": None,
}
_EXAMPLE_DAY = {
    "date": "2026-12-01",
    "deliveries": 1200,
    "clicks": 60,
    "rate": 0.05,
    "rate_ci95": [0.039, 0.064],
    "cumulative_deliveries": 1200,
    "cumulative_clicks": 60,
    "cumulative_rate": 0.05,
    "cumulative_rate_ci95": [0.039, 0.064],
    "cumulative_rate_cs95": [0.032, 0.068],
    "cumulative_lift": None,
    "cumulative_lift_ci95": None,
    "cumulative_lift_cs95": None,
}


def _example_arm(name: str, policy: str, clicks: int, lift) -> dict:
    return {
        "name": name,
        "policy": policy,
        "modules": [],
        "hcps": 830,
        "recommendations": 1250,
        "logged_items": 6100,
        "deliveries": 1200,
        "clicks": clicks,
        "successes_without_delivery": 0,
        "rate": round(clicks / 1200, 6),
        "rate_ci95": [0.039, 0.064],
        "rate_cs95": [0.032, 0.068],
        "lift": lift,
        "lift_ci95": None if lift is None else [-0.006, 0.026],
        "lift_cs95": None if lift is None else [-0.014, 0.034],
        "daily": [_EXAMPLE_DAY],
    }


EXAMPLE_RESULTS = {
    **EXAMPLE_EXPERIMENT,
    "arms": [_example_arm("A", "model", 60, None), _example_arm("B", "popularity", 72, 0.01)],
    "holdout_results": None,
    "verdict": "arm B against A: not yet significant (1.0 points, 95% interval -1.4 to 3.4)",
    "verdict_basis": "lift_cs95",
    "methods": {"rate_ci95": "Wilson score interval (fixed sample size)"},
    "power": {
        "alpha": 0.05,
        "power": 0.8,
        "two_sided": True,
        "baseline_rate": 0.05,
        "min_detectable_lift": 0.01,
        "sample_size_per_arm": 8158,
        "deliveries_per_arm_so_far": 1200,
        "enough": False,
        "detectable_lift_now": 0.025,
    },
    "counting": actions.COUNTING,
}


# --- views --------------------------------------------------------------------------------


class ExperimentListView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope, CanReadExperiments]
    required_scopes = {"GET": "experiments:read", "POST": "experiments:write"}
    parser_classes = [SizeLimitedJSONParser]

    @extend_schema(
        operation_id="experiments_list",
        summary="Experiments, newest first (archived ones only with ?status=)",
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=[*Status.values, "all"],
                description="Default: running and stopped.",
            )
        ],
        examples=[OpenApiExample("Running", value=[EXAMPLE_EXPERIMENT], response_only=True)],
        responses={
            200: ExperimentSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="Unknown status."),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        found = actions.experiment_list(
            actor=request.user, status=request.query_params.get("status")
        )
        return Response([actions.experiment_summary(e) for e in found])

    @extend_schema(
        operation_id="experiments_create",
        summary="Start an experiment (admins)",
        request=ExperimentRequestSerializer,
        examples=[
            OpenApiExample("Three arms", value=EXAMPLE_REQUEST, request_only=True),
            OpenApiExample(
                "Started", value=EXAMPLE_EXPERIMENT, response_only=True, status_codes=["201"]
            ),
        ],
        responses={
            201: ExperimentSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Bad input, naming the field: arms (fewer than two), "
                "arms.N.policy, arms.N.modules (unknown module), holdout (outside 0-0.5), "
                "traffic (a running experiment covers it), brand, market, channel.",
            ),
            **_ERRORS,
        },
        description=(
            "Each HCP is assigned by sha256 of the experiment id and its external id: the "
            "holdout share follows the plain model (arm 'holdout'), the rest is split equally "
            "between the arms. Recommendations and next best actions whose request matches the "
            "traffic (brand, market, channel; null matches any) follow the HCP's arm and carry "
            "`experiment: {id, arm}`. Two running experiments never share traffic."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = ExperimentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        experiment = actions.experiment_create(
            actor=request.user,
            name=data["name"],
            arms=[
                actions.ArmSpec(a["name"], a["policy"], list(a.get("modules") or []))
                for a in data["arms"]
            ],
            holdout=data.get("holdout", 0.0),
            metric=data.get("metric", Metric.CLICK),
            brand=data.get("brand"),
            market=data.get("market"),
            channel=data.get("channel"),
            min_detectable_lift=data.get("min_detectable_lift"),
            microsegment=data.get("microsegment"),
        )
        location = reverse("api-experiment-detail", kwargs={"id": experiment.pk})
        return Response(
            actions.experiment_summary(experiment),
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class ExperimentDetailView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope, CanReadExperiments]
    required_scopes = {"GET": "experiments:read"}

    @extend_schema(
        operation_id="experiments_retrieve",
        summary="An experiment's results per arm, lifts, verdict, power and daily series",
        parameters=[
            OpenApiParameter(
                "min_detectable_lift",
                OpenApiTypes.FLOAT,
                OpenApiParameter.QUERY,
                description="Overrides the stored one for the power figure.",
            )
        ],
        examples=[OpenApiExample("Results", value=EXAMPLE_RESULTS, response_only=True)],
        responses={
            200: ExperimentResultsSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Bad min_detectable_lift."),
            404: OpenApiResponse(ErrorSerializer, description="No such experiment."),
            **_ERRORS,
        },
    )
    def get(self, request: Request, id: int) -> Response:
        raw = request.query_params.get("min_detectable_lift") or ""
        mde = None
        if raw:
            try:
                mde = float(raw)
            except ValueError:
                raise InvalidInput("A number, e.g. 0.005.", field="min_detectable_lift") from None
        return Response(
            actions.experiment_results(
                actor=request.user, experiment_id=id, min_detectable_lift=mde
            )
        )


def _transition_schema(operation_id: str, summary: str, conflict: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        request=None,
        examples=[OpenApiExample("Done", value=EXAMPLE_EXPERIMENT, response_only=True)],
        responses={
            200: ExperimentSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such experiment."),
            409: OpenApiResponse(ErrorSerializer, description=conflict),
            **_ERRORS,
        },
    )


class ExperimentStopView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope, CanManageExperiments]
    required_scopes = {"POST": "experiments:write"}

    @_transition_schema(
        "experiments_stop_create",
        "Stop a running experiment: its HCPs return to the plain model",
        "The experiment is not running.",
    )
    def post(self, request: Request, id: int) -> Response:
        experiment = actions.experiment_stop(actor=request.user, experiment_id=id)
        return Response(actions.experiment_summary(experiment))


class ExperimentArchiveView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope, CanManageExperiments]
    required_scopes = {"POST": "experiments:write"}

    @_transition_schema(
        "experiments_archive_create",
        "Archive a stopped experiment (hidden from the default list)",
        "The experiment is not stopped.",
    )
    def post(self, request: Request, id: int) -> Response:
        experiment = actions.experiment_archive(actor=request.user, experiment_id=id)
        return Response(actions.experiment_summary(experiment))
