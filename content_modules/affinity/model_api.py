"""The affinity model's API: one HCP's affinities, starting a training run, the model in use."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.errors import PermissionDenied

from . import actions
from .models import AffinityModel, ModelStatus


class ErrorsSerializer(serializers.Serializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


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
    metrics = serializers.DictField(help_text="Training, gate and evaluation figures.")


class ModelSerializer(ModelEntrySerializer):
    embedding_model = serializers.CharField()
    embedding_model_sha256 = serializers.CharField()
    params = serializers.DictField()
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
        "metrics": model.metrics,
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
        "gate": {"passed": True, "reason": "", "holdout_fraction": 0.2},
    },
}
EXAMPLE_MODEL = {
    **EXAMPLE_ENTRY,
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_model_sha256": "5f0b...",
    "params": {"C": 1.0, "seed": 0},
    "history": [EXAMPLE_ENTRY],
}


class HCPAffinityView(APIView):
    permission_classes = [IsAuthenticated]

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
    permission_classes = [IsAuthenticated]

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
            **_errors,
        },
    )
    def post(self, request: Request) -> Response:
        queued = actions.affinity_training_request(actor=request.user)
        return Response(
            {"task_id": queued.task_id, "queued": queued.queued}, status=status.HTTP_202_ACCEPTED
        )


class ModelView(APIView):
    permission_classes = [IsAuthenticated]

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
                "params": model.params,
                "history": [model_entry(m) for m in history],
            }
        )


class ModelListView(APIView):
    permission_classes = [IsAuthenticated]

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
    permission_classes = [IsAuthenticated]

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
