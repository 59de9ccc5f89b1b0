"""The affinity model's API: one HCP's affinities, starting a training run, the model in use."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.scopes import TokenHasScope
from content_modules.delivery import idempotency
from content_modules.errors import PermissionDenied
from contentapp.api import ErrorSerializer as ErrorsSerializer

from . import actions
from .learning.features import Params
from .models import AffinityModel, ModelStatus

_probabilities = serializers.DictField(
    child=serializers.FloatField(),
    help_text="Predicted engagement probability per value, everything else average.",
)


class AffinitySerializer(serializers.Serializer):
    hcp = serializers.CharField()
    model_version = serializers.CharField()
    n_events = serializers.IntegerField()
    message = _probabilities
    theme = serializers.DictField(child=serializers.FloatField())
    tonality = serializers.DictField(child=serializers.FloatField())
    format = serializers.DictField(child=serializers.FloatField())
    channel = serializers.DictField(child=serializers.FloatField())


# --- the model's figures, as stored by training, the gate and evaluation -------------------
# Stored keys like "ndcg@5" are shown as ndcg_at_5: a generated client needs identifiers.
# Fields the code has always written are required; blocks older models lack are optional.


class CalibrationMetricsSerializer(serializers.Serializer):
    """Fit of predicted probabilities to outcomes on one set of exposures."""

    n = serializers.IntegerField(help_text="Exposures measured.")
    positive_rate = serializers.FloatField()
    brier = serializers.FloatField(required=False, help_text="Brier score (lower is better).")
    log_loss = serializers.FloatField(required=False)
    ece = serializers.FloatField(required=False, help_text="Expected calibration error.")
    auc = serializers.FloatField(required=False, help_text="Only with both outcomes present.")


class RankingMetricsSerializer(serializers.Serializer):
    """Per-HCP ranking quality of held-out exposures (HCPs with a positive among two items)."""

    auc = serializers.FloatField(required=False)
    ndcg_at_5 = serializers.FloatField(source="ndcg@5", allow_null=True, help_text="Mean NDCG@5.")
    recall_at_5 = serializers.FloatField(source="recall@5", allow_null=True)
    n_hcps = serializers.IntegerField()


class MethodMetricsSerializer(RankingMetricsSerializer):
    cold = RankingMetricsSerializer(
        required=False, help_text="The same over HCPs with little history before the holdout."
    )


class EvaluationMethodsSerializer(serializers.Serializer):
    model = MethodMetricsSerializer()
    random = MethodMetricsSerializer()
    popularity = MethodMetricsSerializer()
    group_popularity = MethodMetricsSerializer(help_text="Popularity within specialty x segment.")
    tag_regression = MethodMetricsSerializer()
    text_regression = MethodMetricsSerializer()
    model_without_text = MethodMetricsSerializer(
        required=False, help_text="Ablation: the model without its text features."
    )


class OffPolicySerializer(serializers.Serializer):
    """IPS/SNIPS click rate at rank 1 of the model's pick within each logged slate."""

    n = serializers.IntegerField()
    ips = serializers.FloatField(allow_null=True)
    ips_stderr = serializers.FloatField(required=False, allow_null=True)
    ips_ci95 = serializers.ListField(
        child=serializers.FloatField(), required=False, allow_null=True
    )
    snips = serializers.FloatField(allow_null=True)
    snips_ci95 = serializers.ListField(
        child=serializers.FloatField(), required=False, allow_null=True
    )
    dr = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Doubly robust: the model's own probabilities corrected by weighted residuals.",
    )
    dr_stderr = serializers.FloatField(required=False, allow_null=True)
    dr_ci95 = serializers.ListField(child=serializers.FloatField(), required=False, allow_null=True)
    effective_n = serializers.FloatField(
        required=False, help_text="(sum w)^2 / sum w^2: few means a handful of weights decide."
    )
    logged_click_rate = serializers.FloatField(allow_null=True)
    n_recommendations = serializers.IntegerField()


class EvaluationSerializer(serializers.Serializer):
    """Held-out evaluation: fit on the earliest events, score the latest share."""

    holdout_fraction = serializers.FloatField()
    cutoff = serializers.FloatField(help_text="Event time (epoch seconds) the holdout starts at.")
    n_train_events = serializers.IntegerField()
    n_test_exposures = serializers.IntegerField()
    test_positive_rate = serializers.FloatField(allow_null=True)
    methods = EvaluationMethodsSerializer()
    calibration = CalibrationMetricsSerializer()
    off_policy = OffPolicySerializer(
        allow_null=True, help_text="Null when no logged recommendation got feedback."
    )


class GateComparisonSerializer(serializers.Serializer):
    """Mean per-HCP paired difference (positive: the challenger is better) and its margin."""

    n_hcps = serializers.IntegerField()
    mine = serializers.FloatField(required=False)
    other = serializers.FloatField(required=False)
    diff = serializers.FloatField(allow_null=True)
    sd = serializers.FloatField(allow_null=True, help_text="Bootstrap standard deviation.")
    margin = serializers.FloatField(allow_null=True)


class GateVersusSerializer(serializers.Serializer):
    ndcg_at_5 = GateComparisonSerializer(source="ndcg@5")
    log_loss = GateComparisonSerializer()
    passed = serializers.BooleanField()
    rule = serializers.CharField()


class GateChampionSerializer(GateVersusSerializer):
    model_version = serializers.CharField()
    compared_as = serializers.CharField()


class GateChallengerSerializer(serializers.Serializer):
    ndcg_at_5 = serializers.FloatField(source="ndcg@5")
    log_loss = serializers.FloatField()


class GateSerializer(serializers.Serializer):
    """The champion/challenger gate's verdict and figures."""

    passed = serializers.BooleanField()
    reason = serializers.CharField()
    method = serializers.CharField()
    holdout_fraction = serializers.FloatField()
    cutoff = serializers.FloatField()
    n_train_events = serializers.IntegerField()
    n_test_exposures = serializers.IntegerField()
    z = serializers.FloatField()
    bootstrap = serializers.IntegerField()
    popularity = GateVersusSerializer(
        required=False, help_text="Versus popularity within specialty x segment (must win)."
    )
    champion = GateChampionSerializer(
        required=False, allow_null=True, help_text="Versus the active model (not worse)."
    )
    challenger = GateChallengerSerializer(required=False)


class ModelMetricsSerializer(serializers.Serializer):
    train = CalibrationMetricsSerializer(required=False, help_text="On the training exposures.")
    calibration = CalibrationMetricsSerializer(
        required=False, help_text="On the latest window, by a fit that never saw it."
    )
    gate = GateSerializer(required=False, help_text="Absent for models trained before the gate.")
    evaluation = EvaluationSerializer(
        required=False, help_text="Present once the model was evaluated."
    )


class ModelParamsSerializer(serializers.Serializer):
    """Hyper-parameters of features and fit (one stored before a parameter existed shows
    the value it was fitted with: ``Params.stored``)."""

    half_life_days = serializers.FloatField()
    prior_strength = serializers.FloatField()
    taste_shrink = serializers.FloatField()
    embedding_dim = serializers.IntegerField()
    taste_dim = serializers.IntegerField()
    text_features = serializers.BooleanField()
    text_clauses = serializers.BooleanField()
    popularity_features = serializers.BooleanField()
    item_offsets = serializers.BooleanField(
        help_text="A per-item term (empirical Bayes) fitted after the regression; false for "
        "models stored before it existed."
    )
    C = serializers.FloatField(help_text="Inverse regularisation strength.")
    max_rows = serializers.IntegerField()
    windows = serializers.IntegerField()
    seed = serializers.IntegerField()


class ModelEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    model_version = serializers.CharField()
    trained_at = serializers.DateTimeField()
    n_events = serializers.IntegerField()
    n_hcps = serializers.IntegerField()
    is_active = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=ModelStatus.choices,
        help_text="The champion/challenger gate's verdict: passed, rejected, forced (rejected, "
        "activated by an admin with a reason) or ungated (trained before the gate).",
    )
    reason = serializers.CharField(help_text="The gate's verdict in words, with its figures.")
    override_reason = serializers.CharField(help_text="Why an admin activated it anyway.")
    metrics = ModelMetricsSerializer(help_text="Training, gate and evaluation figures.")


class ModelSerializer(ModelEntrySerializer):
    embedding_model = serializers.CharField()
    embedding_model_sha256 = serializers.CharField()
    params = ModelParamsSerializer()
    history = ModelEntrySerializer(many=True, help_text="The latest trained models, newest first.")


class ActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="Required when the gate rejected the model; audited.",
    )


def model_entry(model: AffinityModel) -> dict:
    """One stored model as the API shows it (the gate's verdict beside its figures)."""
    return {
        "id": model.pk,
        "model_version": model.model_version,
        "trained_at": model.trained_at,
        "n_events": model.n_events,
        "n_hcps": model.n_hcps,
        "is_active": model.is_active,
        "status": model.status,
        "reason": model.reason,
        "override_reason": model.override_reason,
        "metrics": ModelMetricsSerializer(model.metrics or {}).data,
    }


_errors = {
    401: OpenApiResponse(ErrorsSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorsSerializer, description="The role may not do this."),
}


_CALIBRATION_EXAMPLE = {
    "n": 41200,
    "positive_rate": 0.082,
    "brier": 0.071,
    "log_loss": 0.262,
    "ece": 0.004,
    "auc": 0.71,
}
_RANKING_EXAMPLE = {"auc": 0.71, "ndcg_at_5": 0.43, "recall_at_5": 0.61, "n_hcps": 910}
_COMPARISON_EXAMPLE = {
    "n_hcps": 910,
    "mine": 0.43,
    "other": 0.38,
    "diff": 0.05,
    "sd": 0.008,
    "margin": 0.013,
}
EXAMPLE_ENTRY = {
    "id": "9d1c2b7e-5f4a-4e0b-8c3d-2a1b0c9d8e7f",
    "model_version": "2026-11-22T10:00:00Z#17",
    "trained_at": "2026-11-22T10:00:00Z",
    "n_events": 58210,
    "n_hcps": 1200,
    "is_active": True,
    "status": "passed",
    "reason": "beats popularity within specialty x segment",
    "override_reason": "",
    "metrics": {
        "train": _CALIBRATION_EXAMPLE,
        "calibration": _CALIBRATION_EXAMPLE,
        "gate": {
            "passed": True,
            "reason": "",
            "method": "time-based holdout, per-HCP bootstrap of the paired difference",
            "holdout_fraction": 0.2,
            "cutoff": 1763800000.0,
            "n_train_events": 46568,
            "n_test_exposures": 9120,
            "z": 1.645,
            "bootstrap": 1000,
            "popularity": {
                "ndcg_at_5": _COMPARISON_EXAMPLE,
                "log_loss": {**_COMPARISON_EXAMPLE, "mine": 0.26, "other": 0.28, "diff": 0.02},
                "passed": True,
                "rule": "win by the margin",
            },
            "champion": None,
            "challenger": {"ndcg_at_5": 0.43, "log_loss": 0.26},
        },
        "evaluation": {
            "holdout_fraction": 0.2,
            "cutoff": 1763800000.0,
            "n_train_events": 46568,
            "n_test_exposures": 9120,
            "test_positive_rate": 0.08,
            "methods": dict.fromkeys(
                (
                    "model",
                    "random",
                    "popularity",
                    "group_popularity",
                    "tag_regression",
                    "text_regression",
                    "model_without_text",
                ),
                _RANKING_EXAMPLE,
            ),
            "calibration": _CALIBRATION_EXAMPLE,
            "off_policy": None,
        },
    },
}
EXAMPLE_MODEL = {
    **EXAMPLE_ENTRY,
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_model_sha256": "5f0b2c...",
    "params": Params().as_dict(),
    "history": [EXAMPLE_ENTRY],
}


class HCPAffinityView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"GET": "hcps:read"}

    @extend_schema(
        operation_id="hcp_affinity_retrieve",
        summary="Learned affinity of one HCP per feature value",
        examples=[
            OpenApiExample(
                "Affinity",
                value={
                    "hcp": "HCP-123",
                    "model_version": "2026-11-22T10:00:00Z#17",
                    "n_events": 58,
                    "message": {"efficacy": 0.21, "safety": 0.08},
                    "theme": {"outcomes": 0.12},
                    "tonality": {"empathetic": 0.19},
                    "format": {"infographic": 0.15},
                    "channel": {"email": 0.22},
                },
                response_only=True,
            )
        ],
        responses={
            200: AffinitySerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Malformed external id."),
            404: OpenApiResponse(ErrorsSerializer, description="Unknown HCP."),
            409: OpenApiResponse(ErrorsSerializer, description="No model has been trained yet."),
            **_errors,
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(actions.hcp_affinity_get(actor=request.user, external_id=external_id))


class TrainView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"POST": "model:train"}

    @extend_schema(
        summary="Start a training run in the background",
        examples=[
            OpenApiExample(
                "Queued",
                value={"task_id": "c2a4e0f1-7d3b-4a55-9e8e-3b1f0a9d6c72", "queued": True},
                response_only=True,
                status_codes=["202"],
            )
        ],
        request=None,
        parameters=[idempotency.SCHEMA_PARAMETER],
        responses={
            202: inline_serializer(
                "TrainStarted",
                {
                    "task_id": serializers.CharField(),
                    "queued": serializers.BooleanField(
                        help_text="False when the task queue did not answer: the request "
                        "is kept and runs once the queue is back."
                    ),
                },
            ),
            422: OpenApiResponse(
                ErrorsSerializer, description="The idempotency key was used for another body."
            ),
            **_errors,
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency.key_from(request)
        if key is None:
            queued = actions.affinity_training_request(actor=request.user)
            return Response(
                {"task_id": queued.task_id, "queued": queued.queued},
                status=status.HTTP_202_ACCEPTED,
            )

        def record() -> tuple[int, dict]:
            task_id = actions.affinity_training_record(actor=request.user)
            return status.HTTP_202_ACCEPTED, {"task_id": task_id, "queued": True}

        def dispatch(body: dict) -> dict:
            queued = actions.affinity_training_dispatch(actor=request.user, task_id=body["task_id"])
            return {**body, "queued": queued.queued}

        outcome = idempotency.run(
            actor=request.user,
            scope="train",
            key=key,
            body={},
            compute=record,
            after_commit=dispatch,
        )
        return idempotency.response(outcome)


class ModelView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"GET": "model:read"}

    @extend_schema(
        summary="The affinity model in use",
        examples=[OpenApiExample("Model in use", value=EXAMPLE_MODEL, response_only=True)],
        responses={
            200: ModelSerializer,
            409: OpenApiResponse(ErrorsSerializer, description="No model has been trained yet."),
            **_errors,
        },
    )
    def get(self, request: Request) -> Response:
        model = actions.active_model_get(actor=request.user)
        history = actions.model_history(actor=request.user)
        return Response(
            {
                **model_entry(model),
                "embedding_model": model.embedding_model,
                "embedding_model_sha256": model.embedding_model_sha256,
                "params": ModelParamsSerializer(Params.stored(model.params).as_dict()).data,
                "history": [model_entry(m) for m in history],
            }
        )


class ModelListView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"GET": "model:read"}

    @extend_schema(
        summary="The latest trained models with the gate's verdict, newest first",
        responses={
            200: inline_serializer("ModelHistory", {"models": ModelEntrySerializer(many=True)}),
            **_errors,
        },
    )
    def get(self, request: Request) -> Response:
        history = actions.model_history(actor=request.user)
        return Response({"models": [model_entry(m) for m in history]})


class ModelActivateView(APIView):
    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"POST": "model:train"}

    @extend_schema(
        summary="Activate a stored model (admin); one the gate rejected needs a reason",
        request=ActivateSerializer,
        responses={
            200: ModelEntrySerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Rejected model without reason."),
            404: OpenApiResponse(ErrorsSerializer, description="No such model."),
            **_errors,
        },
    )
    def post(self, request: Request, model_id) -> Response:
        if not actions.can_force_activate(request.user):
            raise PermissionDenied("Only an admin may activate an affinity model.")
        body = ActivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = actions.model_activate(
            actor=request.user, model_id=model_id, reason=body.validated_data["reason"]
        )
        return Response(model_entry(model))
