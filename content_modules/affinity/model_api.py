"""The affinity model's API: one HCP's affinities, starting a training run, the model in use."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.delivery import idempotency
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


class HCPAffinityView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Learned affinity of one HCP per feature value",
        responses={
            200: AffinitySerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Malformed external id."),
            404: OpenApiResponse(ErrorsSerializer, description="Unknown HCP."),
            409: OpenApiResponse(ErrorsSerializer, description="No model has been trained yet."),
            **_errors,
        },
        tags=["affinity"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(actions.hcp_affinity_get(actor=request.user, external_id=external_id))


class TrainView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Start a training run in the background",
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
        tags=["affinity"],
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
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The affinity model in use",
        responses={
            200: ModelSerializer,
            409: OpenApiResponse(ErrorsSerializer, description="No model has been trained yet."),
            **_errors,
        },
        tags=["affinity"],
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
        tags=["affinity"],
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
        tags=["affinity"],
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
