"""Django admin for the content library.

The admin is a back office, not a second authoring tool: reviewed content
never changes here. Frozen versions, image assets and modules are view-only;
a draft edited here goes through ``module_edit`` like any other edit, so it
is validated, re-hashed, audited and announced. Fields other rows' content
hashes depend on (tag, channel and brand slugs, market codes) cannot change
once created. Every admin write leaves an audit entry.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.files import File
from django.db import models, transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from content_modules.accounts.roles import ReviewRole, is_admin
from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import DomainError

from .files import read_reference_pdf
from .models import (
    Brand,
    BrandPolicy,
    Channel,
    ClaimLink,
    ImageAsset,
    Market,
    Module,
    ModuleVersion,
    ProhibitedPhrase,
    Reference,
    Tag,
    VersionStatus,
)
from .services import (
    CONTENT_KEYS,
    can_edit_module,
    module_edit,
    reference_create,
    tag_create,
    validate_content_rules,
)


def _json_safe(value: Any) -> Any:
    """A form value as the audit trail can store it: rows by pk, files by name."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, models.QuerySet | list | tuple | set):
        return [_json_safe(v) for v in value]
    if isinstance(value, File):
        return value.name
    return value


class AuditedModelAdmin(admin.ModelAdmin):
    """Record every add, change and delete made through the admin in the audit trail."""

    def _audit(self, request, action: str, obj, data: dict[str, Any]) -> None:
        audit_record(
            actor=request.user,
            action=AuditAction(f"admin.{action}"),
            obj=obj,
            data={"model": obj._meta.label_lower, "repr": str(obj)[:200], **data},
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changes = {
            name: {
                "old": _json_safe(form.initial.get(name)),
                "new": _json_safe(form.cleaned_data.get(name)),
            }
            for name in form.changed_data
        }
        self._audit(
            request,
            "changed" if change else "added",
            obj,
            {"fields": list(form.changed_data), "changes": changes},
        )

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._audit(request, "deleted", obj, {})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self._audit(request, "deleted", obj, {})
            super().delete_queryset(request, queryset)


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """View-only: rows are written by the domain, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ImmutableKeyMixin:
    """The key fields are set on creation and read-only afterwards."""

    immutable_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + self.immutable_fields if obj is not None else fields


@admin.register(Tag)
class TagAdmin(ImmutableKeyMixin, AuditedModelAdmin):
    list_display = ("label", "kind", "slug", "active")
    list_filter = ("kind", "active")
    search_fields = ("slug", "label")
    ordering = ("kind", "label")
    # Versions hash their tags by slug: a changed slug would alter approved content.
    immutable_fields = ("kind", "slug")

    def has_add_permission(self, request):
        return is_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        # Tags are referenced by versions (PROTECT); retire them with "active" instead.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = tag_create(actor=request.user, kind=obj.kind, slug=obj.slug, label=obj.label)
        if not obj.active:
            Tag.objects.filter(pk=created.pk).update(active=False)
        # The admin logs and redirects using the form's instance.
        obj.pk = created.pk
        obj._state.adding = False


@admin.register(Channel)
class ChannelAdmin(ImmutableKeyMixin, AuditedModelAdmin):
    list_display = ("slug", "label")
    search_fields = ("slug", "label")
    immutable_fields = ("slug",)

    def has_delete_permission(self, request, obj=None):
        return False


class BrandForm(forms.ModelForm):
    class Meta:
        model = Brand
        fields = ("slug", "name", "review_roles")

    def clean_review_roles(self):
        roles = self.cleaned_data.get("review_roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise forms.ValidationError('Give a list of role names, e.g. ["medical", "legal"].')
        unknown = sorted(set(roles) - set(ReviewRole.values))
        if unknown:
            # Submitting a version of this brand would fail on an unknown role.
            raise forms.ValidationError(
                f"Unknown review role(s): {', '.join(unknown)}. "
                f"Choose from {', '.join(ReviewRole.values)}."
            )
        return list(dict.fromkeys(roles))


@admin.register(Brand)
class BrandAdmin(ImmutableKeyMixin, AuditedModelAdmin):
    form = BrandForm
    list_display = ("name", "slug", "review_roles")
    search_fields = ("name", "slug")
    immutable_fields = ("slug",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BrandPolicy)
class BrandPolicyAdmin(AuditedModelAdmin):
    """A brand's pre-review checks (library/quickcheck.py); every edit is audited."""

    list_display = ("brand", "requires_safety_statement", "checks_block_submission")
    list_filter = ("requires_safety_statement", "checks_block_submission")
    search_fields = ("brand__name", "brand__slug")


@admin.register(ProhibitedPhrase)
class ProhibitedPhraseAdmin(AuditedModelAdmin):
    """Words a brand's content must not use (in every market, or one); edits are audited."""

    list_display = ("phrase", "brand", "market", "reason")
    list_filter = ("brand", "market")
    search_fields = ("phrase", "reason")


@admin.register(Market)
class MarketAdmin(ImmutableKeyMixin, AuditedModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")
    immutable_fields = ("code",)

    def has_delete_permission(self, request, obj=None):
        return False


def _used_by_frozen_version(reference: Reference) -> bool:
    return reference.versions.exclude(status=VersionStatus.DRAFT).exists()


class ReferenceForm(forms.ModelForm):
    url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    pdf = forms.FileField(required=False, help_text="A PDF, judged by its bytes, not its name.")

    class Meta:
        model = Reference
        fields = ("citation", "url", "pdf")

    def clean_pdf(self):
        """The same PDF check as the API: a page that starts %PDF- is not a PDF."""
        upload = self.cleaned_data.get("pdf")
        if upload:
            try:
                read_reference_pdf(upload)
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from exc
        return upload


@admin.register(Reference)
class ReferenceAdmin(AuditedModelAdmin):
    form = ReferenceForm
    list_display = ("short_citation", "url", "has_pdf", "created_by", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("citation", "url")
    date_hierarchy = "created_at"
    readonly_fields = ("created_by", "created_at")

    def get_fields(self, request, obj=None):
        # A stored PDF is never replaced in place (reference_create names it by its
        # content); it is linked through the role-checked view, not /media/.
        if obj is not None:
            return ("citation", "url", "pdf_link", "created_by", "created_at")
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return (*self.readonly_fields, "pdf_link")
        return self.readonly_fields

    @admin.display(description="PDF")
    def pdf_link(self, obj: Reference) -> str:
        if not obj.pdf:
            return "-"
        return format_html(
            '<a href="{}">reference-{}.pdf</a>',
            reverse("library:reference_pdf", args=[obj.pk]),
            obj.pk,
        )

    @admin.display(description="citation")
    def short_citation(self, obj: Reference) -> str:
        return obj.citation[:80]

    @admin.display(boolean=True, description="PDF")
    def has_pdf(self, obj: Reference) -> bool:
        return bool(obj.pdf)

    def has_change_permission(self, request, obj=None):
        # A reference behind reviewed content is part of what was approved.
        if obj is not None and _used_by_frozen_version(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.versions.exists():
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = reference_create(
            actor=request.user,
            citation=obj.citation,
            url=obj.url,
            pdf=form.cleaned_data.get("pdf") or None,
        )
        obj.pk = created.pk
        obj._state.adding = False


@admin.register(ClaimLink)
class ClaimLinkAdmin(ReadOnlyModelAdmin):
    """Claim-to-reference links are made and removed on the module's pages (audited)."""

    list_display = ("version", "field", "quoted_text", "reference", "locator", "created_at")
    list_filter = ("field",)
    search_fields = ("quoted_text", "reference__citation", "version__title")
    list_select_related = ("version", "version__module", "reference")
    raw_id_fields = ("version", "reference", "origin")


@admin.register(ImageAsset)
class ImageAssetAdmin(ReadOnlyModelAdmin):
    """Assets are immutable and only made by the image pipeline."""

    list_display = (
        "preview",
        "original_name",
        "format",
        "width",
        "height",
        "uploaded_by",
        "uploaded_at",
    )
    list_filter = ("format",)
    list_select_related = ("uploaded_by",)
    search_fields = ("original_name", "sha256")
    date_hierarchy = "uploaded_at"
    fields = (
        "preview",
        "original_name",
        "format",
        ("width", "height"),
        "sha256",
        "files",
        "uploaded_by",
        "uploaded_at",
    )
    readonly_fields = tuple(f for row in fields for f in ((row,) if isinstance(row, str) else row))

    @admin.display(description="files")
    def files(self, obj: ImageAsset) -> str:
        # Through the role-checked view: no route serves the media folder.
        return format_html_join(
            " ",
            '<a href="{}">{}</a>',
            ((reverse("library:image", args=[obj.pk, r]), r) for r in ("full", "web", "thumbnail")),
        )

    @admin.display(description="preview")
    def preview(self, obj: ImageAsset) -> str:
        if not obj.thumbnail:
            return "-"
        # Through the library's role-checked view: media of unapproved content is not public.
        return format_html(
            '<a href="{}"><img src="{}" alt="{}" width="80" loading="lazy"></a>',
            reverse("library:image", args=[obj.pk, "full"]),
            reverse("library:image", args=[obj.pk, "thumbnail"]),
            obj.original_name,
        )


class VersionInline(admin.TabularInline):
    model = ModuleVersion
    fields = ("number", "status", "title", "created_by", "updated_at", "approved_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ("-number",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Module)
class ModuleAdmin(ReadOnlyModelAdmin):
    """Modules are created and edited by authors; the admin shows them with their versions."""

    list_display = (
        "id",
        "latest_title",
        "latest_status",
        "brand",
        "market",
        "variant_of_link",
        "created_by",
        "created_at",
    )
    list_filter = ("brand", "market", "latest__status")
    list_select_related = ("brand", "market", "created_by", "latest")
    search_fields = ("latest__title", "latest__headline", "latest__key_message")
    date_hierarchy = "created_at"
    fields = ("brand", "market", "variant_of", "created_by", "created_at", "latest")
    readonly_fields = fields
    inlines = (VersionInline,)

    @admin.display(description="title", ordering="latest__title")
    def latest_title(self, obj: Module) -> str:
        return obj.latest.title if obj.latest else ""

    @admin.display(description="latest status", ordering="latest__status")
    def latest_status(self, obj: Module) -> str:
        return obj.latest.get_status_display() if obj.latest else ""

    @admin.display(description="variant of", ordering="variant_of_id")
    def variant_of_link(self, obj: Module) -> str:
        # Module.__str__ queries the versions; a link by id costs nothing per row.
        if not obj.variant_of_id:
            return "-"
        url = reverse("admin:library_module_change", args=[obj.variant_of_id])
        return format_html('<a href="{}">Module {}</a>', url, obj.variant_of_id)


EDITABLE_VERSION_FIELDS = (
    "title",
    "headline",
    "body",
    "key_message",
    "call_to_action",
    "message",
    "themes",
    "tonality",
    "format",
    "channels",
    "references",
    "image",
    "expires_on",
)
VERSION_META_FIELDS = (
    "module_link",
    "number",
    "status",
    "content_hash",
    "created_by",
    "editors",
    "created_at",
    "updated_at",
    "submitted_at",
    "approved_at",
    "status_changed_at",
)


class DraftVersionForm(forms.ModelForm):
    """Applies the same content rules as the API before anything is written."""

    class Meta:
        model = ModuleVersion
        fields = EDITABLE_VERSION_FIELDS

    def clean(self):
        cleaned = super().clean()
        if (
            self.instance.pk
            and not ModuleVersion.objects.filter(
                pk=self.instance.pk, status=VersionStatus.DRAFT
            ).exists()
        ):
            raise forms.ValidationError("This version is no longer a draft; reload the page.")
        changes = {k: cleaned[k] for k in self.changed_data if k in cleaned}
        try:
            validate_content_rules(changes, partial=True)
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return cleaned


@admin.register(ModuleVersion)
class ModuleVersionAdmin(admin.ModelAdmin):
    """Drafts are edited through ``module_edit``; every other version is view-only."""

    form = DraftVersionForm
    list_display = (
        "title",
        "module_link",
        "number",
        "status",
        "brand",
        "market",
        "created_by",
        "updated_at",
        "expires_on",
    )
    list_filter = (
        "status",
        "module__brand",
        "module__market",
        "message",
        "tonality",
        "format",
        "channels",
    )
    list_select_related = ("module__brand", "module__market", "created_by")
    search_fields = ("title", "headline", "key_message", "body")
    date_hierarchy = "updated_at"
    raw_id_fields = ("image",)
    filter_horizontal = ("themes", "channels", "references")
    fieldsets = (
        (None, {"fields": VERSION_META_FIELDS}),
        ("Content", {"fields": EDITABLE_VERSION_FIELDS}),
    )

    @admin.display(description="module", ordering="module_id")
    def module_link(self, obj: ModuleVersion) -> str:
        url = reverse("admin:library_module_change", args=[obj.module_id])
        return format_html('<a href="{}">Module {}</a>', url, obj.module_id)

    @admin.display(description="brand", ordering="module__brand__name")
    def brand(self, obj: ModuleVersion) -> str:
        return obj.module.brand.name

    @admin.display(description="market", ordering="module__market__code")
    def market(self, obj: ModuleVersion) -> str:
        return obj.module.market.code

    def get_readonly_fields(self, request, obj=None):
        return VERSION_META_FIELDS

    def has_add_permission(self, request):
        # Versions come from module_create and module_edit only.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return True
        # Reviewed content is never modified (invariant 2): non-drafts are view-only.
        return obj.status == VersionStatus.DRAFT and can_edit_module(request.user, obj.module)

    def save_model(self, request, obj, form, change):
        changes = {k: form.cleaned_data[k] for k in form.changed_data if k in CONTENT_KEYS}
        if changes:
            # module_edit re-reads and locks the module; it edits this draft in place.
            module_edit(actor=request.user, module=obj.module, changes=changes)

    def save_related(self, request, form, formsets, change):
        # module_edit already set the many-to-many fields; saving them again would
        # bypass the content hash and the audit entry.
        return None
