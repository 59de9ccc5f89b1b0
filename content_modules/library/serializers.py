"""Serializers of the authoring API: they validate input and render results, nothing more.

Writes go through the library actions in ``services.py``; these classes only
turn request bodies (JSON or multipart) into rows the actions take, and rows
into the response shapes of shared/API.md.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.relations import MANY_RELATION_KWARGS, ManyRelatedField
from rest_framework.utils import html

from content_modules import bounds
from content_modules.audit.models import AuditEntry
from content_modules.errors import InvalidInput
from contentapp.api import ErrorSerializer as ErrorSerializer  # the one error body, re-exported
from contentapp.api import flatten_errors

from . import quickcheck
from .images import process_image_upload
from .models import (
    Brand,
    Channel,
    ClaimField,
    ClaimLink,
    ImageAsset,
    Market,
    Module,
    ModuleVersion,
    Reference,
    Tag,
    TagKind,
    VersionStatus,
)


class _BadJSON:
    """A multipart value that looked like JSON but did not parse, or broke a bound."""

    def __init__(self, raw: str, message: str) -> None:
        self.raw = raw
        self.message = message


def _maybe_json(value: Any) -> Any:
    """Decode a multipart string holding a JSON list or object; leave anything else alone.

    Decoded behind the same bounds as JSON bodies (depth before parsing, then
    storable text), so a deeply nested ``tags`` string is a 400, not a
    RecursionError.
    """
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return bounds.json_loads_bounded(value)
        except InvalidInput as exc:
            return _BadJSON(value, exc.message)
        except ValueError as exc:
            return _BadJSON(value, f"Not valid JSON: {exc}.")
    return value


def _fail_bad_json(value: Any) -> None:
    if isinstance(value, _BadJSON):
        raise serializers.ValidationError(value.message)


class FlexibleManyRelatedField(ManyRelatedField):
    """A list of related rows that multipart forms may send as a JSON string or repeated fields.

    ``channels=["email","web"]`` (one JSON-encoded field) and
    ``channels=email&channels=web`` (repeated fields) mean the same.
    """

    def get_value(self, dictionary):
        if html.is_html_input(dictionary):
            if self.field_name not in dictionary:
                # Missing is "required" (or skipped when partial), not an empty list.
                return empty
            values = dictionary.getlist(self.field_name)
            if len(values) == 1:
                decoded = _maybe_json(values[0])
                if decoded is not values[0]:
                    return decoded
            return values
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data):
        _fail_bad_json(data)
        rows = super().to_internal_value(data)
        # The same slug or id twice is one link, not an error.
        return list(dict.fromkeys(rows))


class _FlexibleManyMixin:
    @classmethod
    def many_init(cls, *args, **kwargs):
        list_kwargs = {"child_relation": cls(*args, **kwargs)}
        for key in kwargs:
            if key in MANY_RELATION_KWARGS:
                list_kwargs[key] = kwargs[key]
        return FlexibleManyRelatedField(**list_kwargs)


class TagSlugField(serializers.SlugRelatedField):
    """An active tag of one vocabulary, given by slug; names the vocabulary in every error."""

    def __init__(self, kind: str, **kwargs) -> None:
        self.kind = kind
        kwargs.setdefault("queryset", Tag.objects.filter(kind=kind, active=True))
        super().__init__(slug_field="slug", **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip():
            raise serializers.ValidationError(f"Give a {self.kind} tag slug as a string.")
        slug = data.strip()
        found = self.get_queryset().filter(slug=slug).first()
        if found is not None:
            return found
        if Tag.objects.filter(kind=self.kind, slug=slug, active=False).exists():
            raise serializers.ValidationError(f"The {self.kind} tag '{slug}' is retired.")
        tag = Tag.objects.filter(slug=slug).exclude(kind=self.kind).first()
        if tag is not None:
            raise serializers.ValidationError(
                f"'{slug}' is a {tag.kind} tag, not a {self.kind} tag."
            )
        raise serializers.ValidationError(f"Unknown {self.kind} tag '{slug}'.")


class ThemeSlugField(_FlexibleManyMixin, TagSlugField):
    """Theme slugs, many of them."""


class ChannelSlugField(_FlexibleManyMixin, serializers.SlugRelatedField):
    """A channel by slug (email, rep_email, web, rep_visit, webinar)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Channel.objects.all())
        super().__init__(slug_field="slug", **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Give a channel slug as a string.")
        channel = self.get_queryset().filter(slug=data.strip()).first()
        if channel is None:
            known = ", ".join(self.get_queryset().values_list("slug", flat=True))
            raise serializers.ValidationError(f"Unknown channel '{data}'; known: {known}.")
        return channel


class ReferenceIdField(_FlexibleManyMixin, serializers.PrimaryKeyRelatedField):
    """A registered reference by id."""

    default_error_messages = {
        "does_not_exist": "Unknown reference {pk_value}.",
        "incorrect_type": "Give a reference id as an integer, not {data_type}.",
    }


class RejectUnknownFieldsMixin:
    """Answer 400 for keys the serializer does not know, so a typo is never silently dropped.

    ``ignored_fields`` lists keys that are accepted and ignored (the read-only
    fields of a response, so a client may send back what it read).
    """

    ignored_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        unknown: dict[str, list[str]] = {}
        if hasattr(data, "keys"):
            known = ", ".join(self.fields)
            unknown = {
                key: [f"Unknown field; known fields: {known}."]
                for key in sorted(set(data.keys()) - set(self.fields) - self.ignored_fields)
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Report the typo together with every other field error.
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class TagsInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The four vocabularies of a module: one message, themes, one tonality, one format."""

    message = TagSlugField(TagKind.MESSAGE)
    theme = ThemeSlugField(
        TagKind.THEME,
        many=True,
        allow_empty=False,
        error_messages={"empty": "At least one theme is required."},
    )
    tonality = TagSlugField(TagKind.TONALITY)
    format = TagSlugField(TagKind.FORMAT)

    def get_value(self, dictionary):
        # Multipart sends the whole object as one JSON string.
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            return _maybe_json(dictionary.get(self.field_name))
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        _fail_bad_json(data)
        return super().to_internal_value(data)


class ModuleWriteSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The body of ``POST /modules`` (all required fields) and ``PATCH /modules/{id}`` (any).

    Multipart requests send ``tags`` as a JSON string, ``channels`` and
    ``references`` as a JSON string or repeated fields, and ``image`` as a file.
    """

    # What GET answers besides the writable fields: sending it back changes nothing.
    ignored_fields = frozenset(
        {
            "id",
            "version",
            "version_id",
            "status",
            "content_hash",
            "created_by",
            "created_at",
            "updated_at",
            "version_created_by",
            "version_created_at",
            "submitted_at",
            "approved_at",
            "status_changed_at",
            "approved_version",
            "image_alt_text",
            "checks",
        }
    )

    title = serializers.CharField(max_length=200)
    headline = serializers.CharField(max_length=300)
    body = serializers.CharField()
    key_message = serializers.CharField(max_length=500)
    call_to_action = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    brand = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Brand.objects.all(),
        error_messages={"does_not_exist": "Unknown brand '{value}'."},
    )
    market = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Market.objects.all(),
        error_messages={"does_not_exist": "Unknown market '{value}'."},
    )
    channels = ChannelSlugField(
        many=True,
        allow_empty=False,
        error_messages={"empty": "At least one channel is required."},
        help_text="Channel slugs. Multipart: a JSON list string or repeated fields.",
    )
    tags = TagsInputSerializer(
        help_text="Multipart: the object as a JSON string, e.g. "
        '{"message": "efficacy", "theme": ["outcomes"], "tonality": "clinical", "format": "text"}.'
    )
    references = ReferenceIdField(
        many=True,
        queryset=Reference.objects.all(),
        required=False,
        help_text="Reference ids. Multipart: a JSON list string or repeated fields.",
    )
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)
    variant_of = serializers.PrimaryKeyRelatedField(
        queryset=Module.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        error_messages={"does_not_exist": "Unknown module {pk_value}."},
    )
    image_alt = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        help_text="The image's alt text; blank (the default) uses the headline.",
    )
    image = serializers.FileField(
        required=False,
        allow_null=True,
        allow_empty_file=False,
        use_url=False,
        help_text="Multipart only: a JPEG, PNG or WebP file. JSON PATCH: null removes the image.",
    )

    def validate_body(self, value: str) -> str:
        if len(value) > settings.MODULE_BODY_MAX_CHARS:
            raise serializers.ValidationError(
                f"Body is {len(value)} characters; the limit is {settings.MODULE_BODY_MAX_CHARS}."
            )
        return value

    def validate_expires_on(self, value):
        problem = bounds.expiry_problem(value) if value is not None else None
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_image(self, value):
        """Check the upload by its content now, so a bad image never reaches a transaction."""
        if value is None:
            return None
        try:
            # PayloadTooLarge (413) propagates: it is not a field error of 400.
            return process_image_upload(value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        module: Module | None = self.context.get("module")
        if module is not None:
            # Brand, market and family are the module's identity; a new one needs a new module.
            fixed = {"brand": module.brand, "market": module.market}
            errors = {
                key: [f"The {key} of a module cannot change; create a new module instead."]
                for key, current in fixed.items()
                if key in attrs and attrs[key] != current
            }
            if "variant_of" in attrs and attrs["variant_of"] != module.variant_of:
                errors["variant_of"] = ["The variant family of a module cannot change."]
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


def validated(serializer: serializers.Serializer) -> dict[str, Any]:
    """Validate, answering 400 with flat field names, and return the validated data."""
    if not serializer.is_valid():
        raise serializers.ValidationError(flatten_errors(serializer.errors))
    return serializer.validated_data


# --- Responses -------------------------------------------------------------------


class VocabularyTermSerializer(serializers.Serializer):
    """One term of a vocabulary: ``{"slug", "label"}``."""

    slug = serializers.SlugField(max_length=64)
    label = serializers.CharField(max_length=120)  # type: ignore[assignment]  # API field name


class TagsOutSerializer(serializers.Serializer):
    message = serializers.CharField()
    theme = serializers.ListField(child=serializers.CharField())
    tonality = serializers.CharField()
    format = serializers.CharField()


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


def image_url(request, asset_id: int, rendition: str) -> str:
    """Where an image rendition is fetched: the role-checked image view, never /media/."""
    return _absolute(request, reverse("api-image", args=[asset_id, rendition]))


class ImageOutSerializer(serializers.Serializer):
    """An image asset as its three renditions."""

    url = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()

    def get_url(self, asset: ImageAsset) -> str:
        return image_url(self.context.get("request"), asset.pk, "full")

    def get_web_url(self, asset: ImageAsset) -> str:
        return image_url(self.context.get("request"), asset.pk, "web")

    def get_thumbnail_url(self, asset: ImageAsset) -> str:
        return image_url(self.context.get("request"), asset.pk, "thumbnail")


class ModuleVersionSerializer(serializers.Serializer):
    """A module as one of its versions (the newest for ``/modules``, each for ``/versions``).

    ``id`` is the module id; ``version`` the version number; ``approved_version``
    the number of the version approved now, or null. Expects the view to pass
    ``approved_numbers`` ({module_id: number}) in the context.
    """

    id = serializers.IntegerField(source="module_id")
    version = serializers.IntegerField(source="number")
    version_id = serializers.IntegerField(source="pk")
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    brand = serializers.CharField(source="module.brand.slug")
    market = serializers.CharField(source="module.market.code")
    variant_of = serializers.IntegerField(source="module.variant_of_id", allow_null=True)
    title = serializers.CharField()
    headline = serializers.CharField()
    body = serializers.CharField()
    key_message = serializers.CharField()
    call_to_action = serializers.CharField()
    tags = serializers.SerializerMethodField()
    channels = serializers.SerializerMethodField()
    references = serializers.SerializerMethodField()
    expires_on = serializers.DateField(allow_null=True)
    content_hash = serializers.CharField()
    image = ImageOutSerializer(allow_null=True)
    image_alt = serializers.CharField(
        help_text="The alt text as the author wrote it; blank means the headline is used."
    )
    image_alt_text = serializers.CharField(
        help_text="The alt text every <img> of this version carries: image_alt, else the headline."
    )
    created_by = serializers.CharField(source="module.created_by.username")
    created_at = serializers.DateTimeField(source="module.created_at")
    updated_at = serializers.DateTimeField()
    version_created_by = serializers.CharField(source="created_by.username")
    version_created_at = serializers.DateTimeField(source="created_at")
    submitted_at = serializers.DateTimeField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    status_changed_at = serializers.DateTimeField()
    approved_version = serializers.SerializerMethodField()

    @extend_schema_field(TagsOutSerializer)
    def get_tags(self, version: ModuleVersion) -> dict:
        return version.tags_dict()

    def get_channels(self, version: ModuleVersion) -> list[str]:
        return sorted(c.slug for c in version.channels.all())

    def get_references(self, version: ModuleVersion) -> list[int]:
        return sorted(r.pk for r in version.references.all())

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_approved_version(self, version: ModuleVersion) -> int | None:
        numbers = self.context.get("approved_numbers")
        if numbers is None:
            approved = version.module.approved_version()
            return approved.number if approved else None
        return numbers.get(version.module_id)


class CheckFindingSerializer(serializers.Serializer):
    """One pre-review finding (library/quickcheck.py)."""

    kind = serializers.ChoiceField(choices=[(k, k) for k in quickcheck.KINDS])
    severity = serializers.ChoiceField(choices=[(s, s) for s in quickcheck.SEVERITIES])
    message = serializers.CharField()
    field = serializers.CharField(
        allow_null=True, help_text="The field the finding is about, or null for the version."
    )
    start = serializers.IntegerField(allow_null=True, help_text="Span start in the field.")
    end = serializers.IntegerField(allow_null=True, help_text="Span end (exclusive).")


class ModuleVersionDetailSerializer(ModuleVersionSerializer):
    """One module version with its pre-review checks (not in lists: they cost a search)."""

    checks = serializers.SerializerMethodField(
        help_text="Pre-review findings; none blocks submission unless the brand says so."
    )

    @extend_schema_field(CheckFindingSerializer(many=True))
    def get_checks(self, version: ModuleVersion) -> list[dict]:
        return [f.as_dict() for f in quickcheck.run_checks(version)]


class ReferenceSerializer(serializers.Serializer):
    """A reference as the API shows it."""

    id = serializers.IntegerField(read_only=True)
    citation = serializers.CharField()
    doi = serializers.CharField(
        allow_blank=True, help_text="The DOI as 10.<registrant>/<suffix>; blank when none."
    )
    url = serializers.URLField(allow_blank=True)
    pdf_url = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_pdf_url(self, reference: Reference) -> str | None:
        if not reference.pdf:
            return None
        url = reverse("api-reference-pdf", args=[reference.pk])
        return _absolute(self.context.get("request"), url)


class ReferenceWriteSerializer(serializers.Serializer):
    """The body of ``POST /references``: JSON, or multipart with an optional ``pdf`` file."""

    citation = serializers.CharField(max_length=5000)
    doi = serializers.CharField(
        max_length=250,
        required=False,
        allow_blank=True,
        default="",
        help_text="A DOI (10.1056/NEJMoa2034577); https://doi.org/ and doi: prefixes are accepted.",
    )
    url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    pdf = serializers.FileField(
        required=False,
        allow_null=True,
        allow_empty_file=False,
        use_url=False,
        help_text="Multipart only: a PDF file, judged by its bytes (not its name or type).",
    )


class AuditEntrySerializer(serializers.ModelSerializer):
    """One audit trail entry."""

    actor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of who acted; null for the system (a task, a migration).",
    )

    class Meta:
        model = AuditEntry
        fields = [
            "seq",
            "occurred_at",
            "actor",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "module_id",
            "version_id",
            "data",
            "prev_hash",
            "entry_hash",
        ]
        read_only_fields = fields


class ClaimLinkSerializer(serializers.ModelSerializer):
    """A claim (a span of one text field of a version) linked to one of its references."""

    version = serializers.IntegerField(source="version.number", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    reference = ReferenceSerializer(read_only=True)
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Username of who linked the claim."
    )
    carried_from = serializers.IntegerField(
        source="origin_id",
        read_only=True,
        allow_null=True,
        help_text="The link of the previous version this one was carried from.",
    )

    class Meta:
        model = ClaimLink
        fields = [
            "id",
            "version",
            "version_id",
            "field",
            "start",
            "end",
            "quoted_text",
            "reference",
            "locator",
            "created_by",
            "created_at",
            "carried_from",
        ]
        read_only_fields = fields


class ClaimLinkWriteSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """``{"version", "field", "start", "end", "reference", "locator", "quote"}``.

    ``version`` is the version number within the module; ``quote``, when given,
    must equal the text at ``[start, end)``.
    """

    version = serializers.IntegerField(min_value=1)
    field = serializers.ChoiceField(choices=ClaimField.choices)
    start = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    end = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    reference = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    locator = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Where in the reference: a page, table or passage.",
    )
    quote = serializers.CharField(max_length=20000, required=False, allow_blank=True, default="")


class UnlinkedClaimSerializer(serializers.Serializer):
    """A claim sentence (a number, a percentage or a comparative) that no link supports."""

    field = serializers.ChoiceField(choices=ClaimField.choices)
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    text = serializers.CharField()
    reason = serializers.CharField()
