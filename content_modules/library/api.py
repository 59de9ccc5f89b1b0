"""The authoring REST API: vocabularies, modules, versions, audit history, references.

Views validate input with the serializers, call the library actions in
``services.py`` and render the result; every rule lives in those actions.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import generics, status
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules import bounds
from content_modules.accounts.permissions import AdminsWrite, AuthorsWrite, CanSeeLibrary
from content_modules.audit.models import AuditEntry
from content_modules.errors import InvalidInput, NotFound, PermissionDenied
from contentapp.parsers import SizeLimitedJSONParser

from . import claims, files
from .filters import ModuleFilter
from .images import store_image_asset
from .models import ClaimLink, ImageAsset, Module, ModuleVersion, Reference, Tag, TagKind
from .serializers import (
    AuditEntrySerializer,
    ClaimLinkSerializer,
    ClaimLinkWriteSerializer,
    ErrorSerializer,
    ModuleVersionSerializer,
    ModuleWriteSerializer,
    ReferenceSerializer,
    ReferenceWriteSerializer,
    VocabularyTermSerializer,
    validated,
)
from .services import (
    SCALAR_FIELDS,
    VersionContent,
    can_edit_module,
    module_create,
    module_edit,
    reference_create,
    tag_create,
)


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FilterFriendlyNegotiation(DefaultContentNegotiation):
    """Choose the renderer from the Accept header only.

    ``?format=infographic`` is the library's format-tag filter (API.md), so
    DRF's ``?format=json`` renderer override must not claim the parameter:
    with it, the filter answered 404 "Not found".
    """

    settings = _NoFormatOverride()  # type: ignore[assignment]  # DRF reads only this setting


KIND_PARAMETER = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=TagKind.values, description="Vocabulary"
)


def _errors(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys(codes, ErrorSerializer)


# JSON everywhere (settings); multipart only on the views that take a file, and there
# each body type has a request schema of its own: the JSON one has no file field
# (a generated client's JSON model would otherwise carry a file), the multipart one has.
FILE_PARSERS = [SizeLimitedJSONParser, MultiPartParser]


@extend_schema_serializer(component_name="ModuleWrite")
class ModuleWriteJsonSerializer(ModuleWriteSerializer):
    """``ModuleWrite`` as JSON: no image file (a JSON PATCH may send ``"image": null``)."""

    image = None  # type: ignore[assignment]  # DRF's way to drop an inherited field


class ModuleWriteMultipartSerializer(ModuleWriteSerializer):
    """``ModuleWrite`` as multipart/form-data, with the image file."""


@extend_schema_serializer(component_name="ReferenceWrite")
class ReferenceWriteJsonSerializer(ReferenceWriteSerializer):
    """``ReferenceWrite`` as JSON: no PDF file."""

    pdf = None  # type: ignore[assignment]  # DRF's way to drop an inherited field


class ReferenceWriteMultipartSerializer(ReferenceWriteSerializer):
    """``ReferenceWrite`` as multipart/form-data, with the PDF file."""


def _json_or_multipart(json_serializer, multipart_serializer) -> dict[str, Any]:
    return {"application/json": json_serializer, "multipart/form-data": multipart_serializer}


ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Module id"
)

# Reads the newest version of each module and everything it renders, in a fixed
# number of queries whatever the page size.
_LATEST_RELATED = (
    "brand",
    "market",
    "created_by",
    "latest__created_by",
    "latest__message",
    "latest__tonality",
    "latest__format",
    "latest__image",
)
_LATEST_PREFETCH = ("latest__themes", "latest__channels", "latest__references")
_VERSION_RELATED = (
    "module__brand",
    "module__market",
    "module__created_by",
    "created_by",
    "message",
    "tonality",
    "format",
    "image",
)


def library_modules() -> QuerySet[Module]:
    """Modules with their newest version loaded for rendering."""
    return Module.objects.select_related(*_LATEST_RELATED).prefetch_related(*_LATEST_PREFETCH)


def approved_numbers(module_ids: list[int]) -> dict[int, int]:
    """The number of the version approved now, per module id, in one query."""
    return dict(
        ModuleVersion.objects.approved_now()
        .filter(module_id__in=module_ids)
        .values_list("module_id", "number")
    )


def latest_versions(modules: list[Module]) -> list[ModuleVersion]:
    """Each module's newest version, wired back to the already-loaded module."""
    versions = []
    for module in modules:
        version = module.latest
        if version is None:
            continue
        version.module = module
        versions.append(version)
    return versions


def render_module(request, module: Module) -> dict[str, Any]:
    """A module loaded by ``library_modules()`` as the API's body (its newest version)."""
    versions = latest_versions([module])
    if not versions:
        raise NotFound("This module has no version yet.", field="id")
    context = {"request": request, "approved_numbers": approved_numbers([module.pk])}
    return ModuleVersionSerializer(versions[0], context=context).data


def render_version(request, version: ModuleVersion) -> dict[str, Any]:
    """This version (not necessarily the newest) as the API's module body, freshly reloaded."""
    version = (
        ModuleVersion.objects.select_related(*_VERSION_RELATED)
        .prefetch_related("themes", "channels", "references")
        .get(pk=version.pk)
    )
    context = {"request": request, "approved_numbers": approved_numbers([version.module_id])}
    return ModuleVersionSerializer(version, context=context).data


def _content_changes(data: dict[str, Any]) -> dict[str, Any]:
    """Validated serializer data as the keyword changes ``module_edit`` takes."""
    changes = {key: data[key] for key in SCALAR_FIELDS if key in data and key != "image"}
    if "channels" in data:
        changes["channels"] = data["channels"]
    if "references" in data:
        changes["references"] = data["references"]
    tags = data.get("tags") or {}
    for key in ("message", "tonality", "format"):
        if key in tags:
            changes[key] = tags[key]
    if "theme" in tags:
        changes["themes"] = tags["theme"]
    return changes


class VocabularyView(generics.GenericAPIView):
    """``GET`` a vocabulary's active terms (any signed-in caller); ``POST`` adds one (admins)."""

    permission_classes = [IsAuthenticated, AdminsWrite]
    serializer_class = VocabularyTermSerializer
    pagination_class = None
    filter_backends: list = []

    def _kind(self) -> str:
        kind = self.kwargs["kind"]
        if kind not in TagKind.values:
            raise NotFound(
                f"Unknown vocabulary '{kind}'; known: {', '.join(TagKind.values)}.", field="kind"
            )
        return kind

    @extend_schema(
        parameters=[KIND_PARAMETER],
        responses={200: VocabularyTermSerializer(many=True), **_errors(404)},
    )
    def get(self, request, kind: str):
        terms = Tag.objects.filter(kind=self._kind(), active=True).order_by("label")
        return Response(VocabularyTermSerializer(terms, many=True).data)

    @extend_schema(
        parameters=[KIND_PARAMETER],
        request=VocabularyTermSerializer,
        responses={201: VocabularyTermSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, kind: str):
        kind = self._kind()
        data = validated(VocabularyTermSerializer(data=request.data))
        tag = tag_create(actor=request.user, kind=kind, slug=data["slug"], label=data["label"])
        location = request.build_absolute_uri(reverse("api-vocabulary", kwargs={"kind": kind}))
        return Response(
            VocabularyTermSerializer(tag).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},  # the vocabulary, where the term is listed
        )


class ModuleListView(generics.ListAPIView):
    """``GET`` lists modules (newest version of each) with filters; ``POST`` creates one.

    A script or digital-asset system creates a module with an image like this
    (``--form-string`` sends text as is; ``-F`` would treat ``;``, ``@`` and
    ``<`` in a value as curl syntax)::

        TOKEN=$(curl -s -X POST http://127.0.0.1:8000/api/v1/auth/token \\
            -H 'Content-Type: application/json' \\
            -d '{"username": "author", "password": "..."}' | jq -r .token)
        curl -X POST http://127.0.0.1:8000/api/v1/modules \\
            -H "Authorization: Bearer $TOKEN" \\
            --form-string title='CardioZen outcomes' \\
            --form-string headline='Fewer cardiac events' \\
            --form-string body='In the pivotal trial; 24% fewer events.' \\
            --form-string key_message='24% fewer major cardiac events' \\
            --form-string call_to_action='Read the study' \\
            --form-string brand=cardiozen --form-string market=UK \\
            --form-string channels=email --form-string channels=web \\
            --form-string tags='{"message": "efficacy", "theme": ["outcomes"],
                                 "tonality": "clinical", "format": "image"}' \\
            --form-string references='[12]' --form-string expires_on=2027-06-30 \\
            -F image=@hero.jpg

    ``channels`` and ``references`` may be repeated fields or one JSON list;
    ``tags`` is one JSON object. Without an image, send the same fields as JSON.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary, AuthorsWrite]
    serializer_class = ModuleVersionSerializer
    filterset_class = ModuleFilter
    content_negotiation_class = FilterFriendlyNegotiation
    parser_classes = FILE_PARSERS

    def get_queryset(self):
        return library_modules()

    def list(self, request, *args, **kwargs):
        modules = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        versions = latest_versions(modules)
        context = {
            "request": request,
            "approved_numbers": approved_numbers([m.pk for m in modules]),
        }
        data = ModuleVersionSerializer(versions, many=True, context=context).data
        return self.get_paginated_response(data)

    @extend_schema(
        request=_json_or_multipart(ModuleWriteJsonSerializer, ModuleWriteMultipartSerializer),
        responses={201: ModuleVersionSerializer, **_errors(400, 403, 413)},
    )
    def post(self, request):
        data = validated(ModuleWriteSerializer(data=request.data, context={"request": request}))
        content = VersionContent(
            title=data["title"],
            headline=data["headline"],
            body=data["body"],
            key_message=data["key_message"],
            call_to_action=data.get("call_to_action", ""),
            image_alt=data.get("image_alt", ""),
            message=data["tags"]["message"],
            tonality=data["tags"]["tonality"],
            format=data["tags"]["format"],
            themes=data["tags"]["theme"],
            channels=data["channels"],
            references=data.get("references", []),
            expires_on=data.get("expires_on"),
        )
        processed = data.get("image")
        with transaction.atomic():
            if processed is not None:
                content.image = store_image_asset(actor=request.user, processed=processed)
            version = module_create(
                actor=request.user,
                brand=data["brand"],
                market=data["market"],
                content=content,
                variant_of=data.get("variant_of"),
            )
        location = reverse("api-module-detail", kwargs={"id": version.module_id})
        return Response(
            render_version(request, version),
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class ModuleDetailView(generics.GenericAPIView):
    """``GET`` one module (its newest version); ``PATCH`` edits its working draft.

    Editing an approved module makes the next version as a draft; the
    approved one keeps serving until the new one is approved. A version in
    review answers 409. Only the module's authors and admins may edit.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary, AuthorsWrite]
    serializer_class = ModuleVersionSerializer
    filter_backends: list = []
    parser_classes = FILE_PARSERS

    def get_queryset(self):
        # Rendering reloads after a PATCH; only a GET needs everything up front.
        return library_modules() if self.request.method == "GET" else Module.objects.all()

    def get_object(self) -> Module:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["id"])

    @extend_schema(
        parameters=[ID_PARAMETER], responses={200: ModuleVersionSerializer, **_errors(404)}
    )
    def get(self, request, id: int):
        return Response(render_module(request, self.get_object()))

    @extend_schema(
        parameters=[ID_PARAMETER],
        request=_json_or_multipart(ModuleWriteJsonSerializer, ModuleWriteMultipartSerializer),
        responses={200: ModuleVersionSerializer, **_errors(400, 403, 404, 409, 413)},
    )
    def patch(self, request, id: int):
        module = self.get_object()
        # Refuse before validating, so a stranger learns nothing from field errors.
        if not can_edit_module(request.user, module):
            raise PermissionDenied("Only the module's authors and admins may edit it.")
        serializer = ModuleWriteSerializer(
            data=request.data, partial=True, context={"request": request, "module": module}
        )
        data = validated(serializer)
        changes = _content_changes(data)
        if "image" in data:
            changes["image"] = None
        if not changes:
            raise InvalidInput("Nothing to change: send at least one content field.")
        with transaction.atomic():
            if data.get("image") is not None:
                changes["image"] = store_image_asset(actor=request.user, processed=data["image"])
            version = module_edit(actor=request.user, module=module, changes=changes)
        return Response(render_version(request, version))


class ModuleVersionsView(generics.ListAPIView):
    """``GET`` every version of one module, newest first."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = ModuleVersionSerializer
    filter_backends: list = []

    def get_queryset(self):
        module = get_object_or_404(Module.objects.all(), pk=self.kwargs["id"])
        return (
            ModuleVersion.objects.filter(module=module)
            .select_related(*_VERSION_RELATED)
            .prefetch_related("themes", "channels", "references")
            .order_by("-number")
        )

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["approved_numbers"] = approved_numbers([self.kwargs["id"]])
        return context

    @extend_schema(parameters=[ID_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModuleAuditView(generics.ListAPIView):
    """``GET`` the audit trail entries of one module, oldest first."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = AuditEntrySerializer
    filter_backends: list = []

    def get_queryset(self):
        module = get_object_or_404(Module.objects.all(), pk=self.kwargs["id"])
        return (
            AuditEntry.objects.filter(module_id=module.pk).select_related("actor").order_by("seq")
        )

    @extend_schema(parameters=[ID_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReferenceListView(generics.ListAPIView):
    """``GET`` lists references (``q`` searches citations); ``POST`` registers one.

    Register a reference with its PDF from a script::

        curl -X POST http://127.0.0.1:8000/api/v1/references \\
            -H "Authorization: Bearer $TOKEN" \\
            --form-string citation='Smith J et al. N Engl J Med 2025;392:101-10.' \\
            --form-string url=https://doi.org/10.1000/example -F pdf=@smith2025.pdf
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = ReferenceSerializer
    filter_backends: list = []
    parser_classes = FILE_PARSERS

    def get_queryset(self):
        references = Reference.objects.select_related("created_by").order_by("-created_at", "-id")
        query = self.request.query_params.get("q", "").strip()
        if query:
            references = references.filter(
                Q(citation__icontains=query) | Q(doi__icontains=query) | Q(url__icontains=query)
            )
        return references

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q", OpenApiTypes.STR, description="Search in the citation, DOI and URL"
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=_json_or_multipart(ReferenceWriteJsonSerializer, ReferenceWriteMultipartSerializer),
        responses={201: ReferenceSerializer, **_errors(400, 403, 413)},
    )
    def post(self, request):
        data = validated(ReferenceWriteSerializer(data=request.data))
        reference = reference_create(
            actor=request.user,
            citation=data["citation"],
            doi=data["doi"],
            url=data["url"],
            pdf=data.get("pdf"),
        )
        # References have no page of their own: the list finds one by its citation.
        location = request.build_absolute_uri(reverse("api-reference-list"))
        return Response(
            ReferenceSerializer(reference, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class _AnyAccept(BaseContentNegotiation):
    """A file view answers whatever the client accepts (``image/*``, ``*/*``, a browser's
    list); its errors still render as the API's JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


IMAGE_RENDITIONS = {"full": "image", "web": "web", "thumbnail": "thumbnail"}
BINARY = {
    (200, media): OpenApiResponse(OpenApiTypes.BINARY, description="The file")
    for media in ("image/jpeg", "image/png", "image/webp")
}


class ImageFileView(APIView):
    """``GET`` one rendition (``full``, ``web``, ``thumbnail``) of an uploaded image.

    The ``image_url`` of approved content points here. The engine fetches
    images of versions approved now; authors, reviewers and admins any image.
    Others, and images of content the caller may not see, answer 404.
    """

    content_negotiation_class = _AnyAccept

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Image"),
            OpenApiParameter(
                "rendition", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(IMAGE_RENDITIONS)
            ),
        ],
        responses={**BINARY, **_errors(404)},
    )
    def get(self, request, id: int, rendition: str):
        if rendition not in IMAGE_RENDITIONS:
            raise NotFound("Unknown rendition: use full, web or thumbnail.", field="rendition")
        asset = ImageAsset.objects.filter(pk=id).first()
        if asset is None or not files.may_fetch_image(request.user, asset):
            raise NotFound("No such image.", field="id")
        return files.image_response(asset, IMAGE_RENDITIONS[rendition])


class ReferencePdfView(APIView):
    """``GET`` a reference's PDF, as a download (authors, reviewers and admins)."""

    content_negotiation_class = _AnyAccept

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Reference")
        ],
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF"),
            **_errors(404),
        },
    )
    def get(self, request, id: int):
        reference = Reference.objects.filter(pk=id).first()
        if reference is None or not files.may_fetch_reference_pdf(request.user, reference):
            raise NotFound("No such reference.", field="id")
        if not reference.pdf:
            raise NotFound("This reference has no PDF.", field="pdf")
        return files.reference_pdf_response(reference)


# --- claim links ----------------------------------------------------------------------------


def _claim_links(queryset: QuerySet[ClaimLink]) -> QuerySet[ClaimLink]:
    return queryset.select_related("version", "reference__created_by", "created_by")


class ModuleClaimLinksView(generics.ListAPIView):
    """``GET`` a module's claim links (``?version=n`` for one version); ``POST`` links a claim.

    A link anchors ``[start, end)`` of one text field (headline, body, key
    message) of a draft (its authors) or a version in review (its reviewers) on
    a reference attached to that version, optionally with a page or passage.
    """

    permission_classes = [IsAuthenticated, CanSeeLibrary]
    serializer_class = ClaimLinkSerializer
    filter_backends: list = []
    pagination_class = None

    def _module(self) -> Module:
        return get_object_or_404(Module, pk=self.kwargs["id"])

    def get_queryset(self):
        qs = _claim_links(ClaimLink.objects.filter(version__module=self._module()))
        version = self.request.query_params.get("version")
        if version:
            number = bounds.query_id(version, field="version", what="a version number")
            qs = qs.filter(version__number=number)
        return qs.order_by("version__number", "field", "start", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Module"),
            OpenApiParameter("version", OpenApiTypes.INT, description="Version number"),
        ],
        responses={200: ClaimLinkSerializer(many=True), **_errors(400, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Module")
        ],
        request=ClaimLinkWriteSerializer,
        responses={201: ClaimLinkSerializer, **_errors(400, 403, 404, 409)},
    )
    def post(self, request, id: int):
        module = self._module()
        values = validated(ClaimLinkWriteSerializer(data=request.data))
        version = ModuleVersion.objects.filter(module=module, number=values["version"]).first()
        if version is None:
            raise InvalidInput("No such version of this module.", field="version")
        reference = Reference.objects.filter(pk=values["reference"]).first()
        if reference is None:
            raise InvalidInput(f"Unknown reference {values['reference']}.", field="reference")
        link = claims.claim_link_create(
            actor=request.user,
            version=version,
            field=values["field"],
            start=values["start"],
            end=values["end"],
            reference=reference,
            locator=values["locator"],
            quote=values["quote"],
        )
        link = _claim_links(ClaimLink.objects.all()).get(pk=link.pk)
        location = reverse("api-claim-link-detail", kwargs={"id": link.pk})
        return Response(
            ClaimLinkSerializer(link, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(location)},
        )


class ClaimLinkDetailView(APIView):
    """``GET`` one claim link; ``DELETE`` removes it (while its version may still change)."""

    permission_classes = [IsAuthenticated, CanSeeLibrary]

    def _link(self, id: int) -> ClaimLink:
        return get_object_or_404(_claim_links(ClaimLink.objects.all()), pk=id)

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Link")
        ],
        responses={200: ClaimLinkSerializer, **_errors(403, 404)},
    )
    def get(self, request, id: int):
        return Response(ClaimLinkSerializer(self._link(id), context={"request": request}).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Link")
        ],
        request=None,
        responses={204: None, **_errors(403, 404, 409)},
    )
    def delete(self, request, id: int):
        claims.claim_link_delete(actor=request.user, link=self._link(id))
        return Response(status=status.HTTP_204_NO_CONTENT)
