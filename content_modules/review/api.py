"""The review REST API: submit, task queue, decisions, reassignment, withdrawal,
annotations, signatures, review records and audit exports.

Views validate input, call the actions in ``services.py`` and render the
result; every rule (roles, state, segregation of duties, signatures) lives
in those actions.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules import bounds
from content_modules.accounts.permissions import CanSeeLibrary, IsAdmin, IsReviewer
from content_modules.accounts.roles import ReviewRole
from content_modules.errors import InvalidInput
from content_modules.library.api import FilterFriendlyNegotiation, render_version
from content_modules.library.models import Module, ModuleVersion
from content_modules.library.serializers import ErrorSerializer, ModuleVersionDetailSerializer

from . import exports, queries, services
from .models import Annotation, Review, ReviewTask, TaskStatus
from .policy import decision_policy
from .serializers import (
    AnnotationAddressSerializer,
    AnnotationSerializer,
    AnnotationWriteSerializer,
    DecisionResultSerializer,
    DecisionSerializer,
    ReassignSerializer,
    RecallSerializer,
    ReviewRoundSerializer,
    ReviewTaskDetailSerializer,
    ReviewTaskSerializer,
    SignatureSerializer,
    WithdrawSerializer,
)


def _errors(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys(codes, ErrorSerializer)


def _id(description: str) -> OpenApiParameter:
    return OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description=description)


class CSVRenderer(BaseRenderer):
    """Lets clients ask for ``text/csv``; the views build the CSV body themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- submit and withdraw -------------------------------------------------------------------


class SubmitResponseSerializer(ModuleVersionDetailSerializer):
    """The module body (as ``GET /modules/{id}`` answers it) plus the review just opened."""

    review = serializers.IntegerField(read_only=True)
    tasks = ReviewTaskSerializer(many=True, read_only=True)


class ModuleSubmitView(APIView):
    """``POST`` sends the module's current draft to MLR review (one task per required role)."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Module id")],
        request=None,
        responses={200: SubmitResponseSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        module = get_object_or_404(Module, pk=id)
        review = services.version_submit(actor=request.user, module=module)
        tasks = list(ReviewTask.objects.with_context().filter(review=review).order_by("role"))
        context = {
            "request": request,
            "decidable_ids": decision_policy.decidable_among(request.user, tasks),
        }
        body = render_version(request, review.version)
        return Response(
            {
                **body,
                "review": review.pk,
                "tasks": ReviewTaskSerializer(tasks, many=True, context=context).data,
            }
        )


class ModuleWithdrawView(APIView):
    """``POST`` pulls the approved version from delivery at once (signed, with a reason).

    Admins and medical or regulatory reviewers may withdraw. The password
    re-authenticates the signer; a wrong one is recorded and counts toward
    the lockout.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Module id")],
        request=WithdrawSerializer,
        responses={200: SignatureSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        module = get_object_or_404(Module, pk=id)
        data = WithdrawSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signature = services.module_withdraw(
            actor=request.user,
            module=module,
            reason=data.validated_data.get("reason", ""),
            password=data.validated_data.get("password") or None,
            request=request,
        )
        return Response(SignatureSerializer(signature).data)


class ModuleRecallView(APIView):
    """``POST`` closes the module's open review round before every role decided.

    The module's authors and admins may recall, with a reason (audited). The
    open tasks are cancelled; the version returns to its authors as rejected
    when a role already rejected it, otherwise as changes requested.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Module id")],
        request=RecallSerializer,
        responses={200: ReviewRoundSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        module = get_object_or_404(Module, pk=id)
        data = RecallSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_recall(
            actor=request.user, module=module, reason=data.validated_data.get("reason", "")
        )
        review = (
            Review.objects.select_related("version", "closed_by")
            .prefetch_related(
                Prefetch("tasks", queryset=ReviewTask.objects.with_context().order_by("role"))
            )
            .get(pk=review.pk)
        )
        return Response(ReviewRoundSerializer(review).data)


# --- tasks ---------------------------------------------------------------------------------

REVIEW_FILTERS = [
    OpenApiParameter(
        "mine", OpenApiTypes.BOOL, description="Only open tasks of my roles I may act on"
    ),
    OpenApiParameter("role", OpenApiTypes.STR, enum=ReviewRole.values),
    OpenApiParameter("status", OpenApiTypes.STR, enum=TaskStatus.values),
    OpenApiParameter("overdue", OpenApiTypes.BOOL, description="Open and past the due date"),
    OpenApiParameter("module", OpenApiTypes.INT),
    OpenApiParameter("brand", OpenApiTypes.STR),
    OpenApiParameter("market", OpenApiTypes.STR),
]


class ReviewListView(generics.ListAPIView):
    """``GET`` review tasks, overdue first then by due date; ``?mine=true`` is my queue."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = ReviewTaskSerializer
    filter_backends: list = []

    def get_queryset(self):
        params = self.request.query_params
        role = params.get("role")
        if role and role not in ReviewRole.values:
            raise InvalidInput(f"Role must be one of {', '.join(ReviewRole.values)}.", "role")
        state = params.get("status")
        if state and state not in TaskStatus.values:
            raise InvalidInput(f"Status must be one of {', '.join(TaskStatus.values)}.", "status")
        module = params.get("module")
        if module:
            params = params.copy()
            params["module"] = bounds.query_id(module, field="module", what="a module id")
        return queries.review_queue(self.request.user, params, now=self._now)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": self._now}

    def get_serializer(self, *args, **kwargs):
        if args and kwargs.get("many"):
            # can_decide for the whole page at once: one query, not one per task.
            tasks = list(args[0])
            context = self.get_serializer_context()
            context["decidable_ids"] = decision_policy.decidable_among(self.request.user, tasks)
            return self.get_serializer_class()(tasks, *args[1:], context=context, **kwargs)
        return super().get_serializer(*args, **kwargs)

    @extend_schema(parameters=REVIEW_FILTERS, responses={200: ReviewTaskSerializer(many=True)})
    def get(self, request, *args, **kwargs):
        self._now = timezone.now()
        return self.list(request, *args, **kwargs)


class ReviewDetailView(generics.RetrieveAPIView):
    """``GET`` one task with the references to check and its signatures."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = ReviewTaskDetailSerializer
    queryset = ReviewTask.objects.with_context()
    lookup_url_kwarg = "id"

    @extend_schema(
        parameters=[_id("Review task id")],
        responses={200: ReviewTaskDetailSerializer, **_errors(403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.retrieve(request, *args, **kwargs)


class ReviewDecisionView(APIView):
    """``POST`` decides one task (approve, request_changes, reject), signed with the password."""

    # Refuse other roles before the body is read: an author must get 403, not a 400.
    permission_classes = [IsAuthenticated, IsReviewer]

    @extend_schema(
        parameters=[_id("Review task id")],
        request=DecisionSerializer,
        responses={200: DecisionResultSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        task = get_object_or_404(ReviewTask, pk=id)
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        signature = services.task_decide(
            actor=request.user,
            task=task,
            decision=values["decision"],
            comment=values.get("comment", ""),
            password=values.get("password") or None,
            checked_reference_ids=values.get("checked_references"),
            request=request,
        )
        task = ReviewTask.objects.with_context().get(pk=task.pk)
        return Response(
            {
                "task": ReviewTaskSerializer(task, context={"request": request}).data,
                "signature": SignatureSerializer(signature).data,
            }
        )


class ReviewReassignView(APIView):
    """``POST`` assigns an open task to one reviewer of its role (admins only, audited)."""

    permission_classes = [IsAuthenticated, IsAdmin]

    @extend_schema(
        parameters=[_id("Review task id")],
        request=ReassignSerializer,
        responses={200: ReviewTaskSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        task = get_object_or_404(ReviewTask, pk=id)
        data = ReassignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.task_reassign(
            actor=request.user, task=task, assignee=data.validated_data["assignee"]
        )
        task = ReviewTask.objects.with_context().get(pk=task.pk)
        return Response(ReviewTaskSerializer(task, context={"request": request}).data)


# --- annotations ---------------------------------------------------------------------------


class ModuleAnnotationsView(generics.ListAPIView):
    """``GET`` a module's annotations (``?version=n`` for one version); ``POST`` adds one.

    A new comment anchors on ``[start, end)`` of one text field of a
    submitted version; ``parent`` makes it a reply to a thread.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = AnnotationSerializer
    filter_backends: list = []
    pagination_class = None

    def _module(self) -> Module:
        return get_object_or_404(Module, pk=self.kwargs["id"])

    def get_queryset(self):
        module = self._module()
        qs = Annotation.objects.filter(version__module=module).select_related(
            "version", "author", "resolved_by", "addressed_by"
        )
        version = self.request.query_params.get("version")
        if version:
            number = bounds.query_id(version, field="version", what="a version number")
            qs = qs.filter(version__number=number)
        return qs.order_by("version__number", "field", "start", "id")

    @extend_schema(
        parameters=[
            _id("Module id"),
            OpenApiParameter("version", OpenApiTypes.INT, description="Version number"),
        ],
        responses={200: AnnotationSerializer(many=True), **_errors(403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        parameters=[_id("Module id")],
        request=AnnotationWriteSerializer,
        responses={201: AnnotationSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        module = self._module()
        data = AnnotationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        parent = None
        version: ModuleVersion | None
        if "parent" in values:
            parent = Annotation.objects.filter(pk=values["parent"], version__module=module).first()
            if parent is None:
                raise InvalidInput("No such comment on this module.", field="parent")
            version = parent.version
        elif "version_id" in values:
            version = ModuleVersion.objects.filter(module=module, pk=values["version_id"]).first()
            if version is None:
                raise InvalidInput("No such version of this module.", field="version_id")
        else:
            version = ModuleVersion.objects.filter(module=module, number=values["version"]).first()
            if version is None:
                raise InvalidInput("No such version of this module.", field="version")
        annotation = services.annotation_create(
            actor=request.user,
            version=version,
            field=values.get("field", ""),
            start=values.get("start"),
            end=values.get("end"),
            text=values["text"],
            parent=parent,
        )
        annotation = Annotation.objects.select_related(
            "version", "author", "resolved_by", "addressed_by"
        ).get(pk=annotation.pk)
        location = reverse("api-module-annotations", kwargs={"id": module.pk})
        return Response(
            AnnotationSerializer(annotation).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class AnnotationResolveView(APIView):
    """``POST`` marks a comment thread resolved."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Annotation id")],
        request=None,
        responses={200: AnnotationSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        annotation = get_object_or_404(Annotation, pk=id)
        services.annotation_resolve(actor=request.user, annotation=annotation)
        annotation = Annotation.objects.select_related(
            "version", "author", "resolved_by", "addressed_by"
        ).get(pk=annotation.pk)
        return Response(AnnotationSerializer(annotation).data)


class AnnotationAddressView(APIView):
    """``POST`` an author marks a comment thread addressed (or, with ``false``, not)."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Annotation id")],
        request=AnnotationAddressSerializer,
        responses={200: AnnotationSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        annotation = get_object_or_404(Annotation, pk=id)
        data = AnnotationAddressSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.annotation_address(
            actor=request.user, annotation=annotation, addressed=data.validated_data["addressed"]
        )
        annotation = Annotation.objects.select_related(
            "version", "author", "resolved_by", "addressed_by"
        ).get(pk=annotation.pk)
        return Response(AnnotationSerializer(annotation).data)


# --- signatures, review record, audit exports ----------------------------------------------


class ModuleSignaturesView(generics.ListAPIView):
    """``GET`` every signature on the module's versions, with its manifestation."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = SignatureSerializer
    filter_backends: list = []
    pagination_class = None

    def get_queryset(self):
        module = get_object_or_404(Module, pk=self.kwargs["id"])
        return queries.module_signatures(module)

    @extend_schema(
        parameters=[_id("Module id")],
        responses={200: SignatureSerializer(many=True), **_errors(403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class ReviewRecordView(APIView):
    """``GET`` the review record of one version: reviews, tasks and signature manifestations."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    @extend_schema(
        parameters=[_id("Version id")],
        responses={200: OpenApiTypes.OBJECT, **_errors(403, 404)},
    )
    def get(self, request, id: int):
        version = get_object_or_404(ModuleVersion, pk=id)
        return Response(queries.review_record(version))


class ReviewRecordCSVView(APIView):
    """``GET`` the review record of one version as CSV, one row per signature."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    renderer_classes = [CSVRenderer, JSONRenderer]
    # Accept header only: ?format=<anything> must not turn into a body-less 404.
    content_negotiation_class = FilterFriendlyNegotiation

    @extend_schema(
        parameters=[_id("Version id")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_errors(403, 404),
        },
    )
    def get(self, request, id: int):
        version = get_object_or_404(ModuleVersion, pk=id)
        body = exports.review_record_csv(queries.review_record(version))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        name = f"review-record-module{version.module_id}-v{version.number}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class AuditExportView(APIView):
    """``GET`` the whole audit trail as CSV (admins only)."""

    permission_classes = [IsAuthenticated, IsAdmin]
    renderer_classes = [CSVRenderer, JSONRenderer]
    # Accept header only: ?format=<anything> must not turn into a body-less 404.
    content_negotiation_class = FilterFriendlyNegotiation

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_errors(403),
        },
    )
    def get(self, request):
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        return _csv_response(exports.audit_csv_lines(), f"audit-{stamp}.csv")


class ModuleAuditExportView(APIView):
    """``GET`` one module's audit entries as CSV (admins only)."""

    permission_classes = [IsAuthenticated, IsAdmin]
    renderer_classes = [CSVRenderer, JSONRenderer]
    # Accept header only: ?format=<anything> must not turn into a body-less 404.
    content_negotiation_class = FilterFriendlyNegotiation

    @extend_schema(
        parameters=[_id("Module id")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_errors(403, 404),
        },
    )
    def get(self, request, id: int):
        module = get_object_or_404(Module, pk=id)
        return _csv_response(exports.audit_csv_lines(module.pk), f"audit-module{module.pk}.csv")
