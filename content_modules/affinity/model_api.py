"""The affinity model's API: one HCP's affinities, starting a training run, the model in use."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .learning import actions


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


class ModelSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    trained_at = serializers.DateTimeField()
    n_events = serializers.IntegerField()
    n_hcps = serializers.IntegerField()
    metrics = serializers.DictField()
    embedding_model = serializers.CharField()
    embedding_model_sha256 = serializers.CharField()
    params = serializers.DictField()


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
        tags=["affinity"],
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
        responses={
            200: ModelSerializer,
            409: OpenApiResponse(ErrorsSerializer, description="No model has been trained yet."),
            **_errors,
        },
        tags=["affinity"],
    )
    def get(self, request: Request) -> Response:
        model = actions.active_model_get(actor=request.user)
        return Response(
            {
                "model_version": model.model_version,
                "trained_at": model.trained_at,
                "n_events": model.n_events,
                "n_hcps": model.n_hcps,
                "metrics": model.metrics,
                "embedding_model": model.embedding_model,
                "embedding_model_sha256": model.embedding_model_sha256,
                "params": model.params,
            }
        )
