"""Forms of the author pages: create and edit a module.

The forms check what a person can fix in the page (required fields, lengths,
dates, the image) so every error shows next to its field at once; the library
actions re-check the same rules and stay the single source of truth.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from content_modules import bounds
from content_modules.errors import DomainError

from .images import process_image_upload
from .models import (
    Brand,
    Channel,
    ClaimField,
    Market,
    Module,
    ModuleVersion,
    Reference,
    Tag,
    TagKind,
)
from .services import M2M_FIELDS, SCALAR_FIELDS, VersionContent


class TagChoiceField(forms.ModelChoiceField):
    """A vocabulary term shown by its label."""

    def label_from_instance(self, obj: Tag) -> str:
        return obj.label


class TagMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Several vocabulary terms shown by their labels."""

    def label_from_instance(self, obj: Tag) -> str:
        return obj.label


class ChannelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Channel) -> str:
        return obj.label


class ReferenceMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Reference) -> str:
        citation = obj.citation if len(obj.citation) <= 110 else obj.citation[:107] + "..."
        return citation


class ModuleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Module) -> str:
        latest = obj.latest if obj.latest_id else None  # no query for a module without one
        title = latest.title if latest is not None else "(no version)"
        return f"#{obj.pk} {title} ({obj.brand.name}, {obj.market.code})"


def _required(message: str) -> dict[str, str]:
    return {"required": message}


def active_tags(kind: str):
    """Active terms of one vocabulary, in label order."""
    return Tag.objects.filter(kind=kind, active=True).order_by("label")


class ModuleForm(forms.Form):
    """The content of a module version, as authors type it.

    ``module`` is the module being edited (None when creating): brand, market
    and variant family are fixed once a module exists, so the edit form drops
    those fields.
    """

    title = forms.CharField(
        max_length=200,
        error_messages=_required("Enter a title."),
        help_text="For people finding the module in the library; HCPs do not see it.",
    )
    brand = forms.ModelChoiceField(
        queryset=Brand.objects.all(),
        empty_label="Choose a brand",
        error_messages=_required("Choose a brand."),
    )
    market = forms.ModelChoiceField(
        queryset=Market.objects.all(),
        empty_label="Choose a market",
        error_messages=_required("Choose a market."),
    )
    headline = forms.CharField(max_length=300, error_messages=_required("Enter a headline."))
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), error_messages=_required("Enter the body text.")
    )
    key_message = forms.CharField(
        max_length=500,
        label="Key message",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages=_required("Enter the key message (the claim)."),
        help_text="The claim this module makes; the references below must support it.",
    )
    call_to_action = forms.CharField(max_length=200, required=False, label="Call to action")
    message = TagChoiceField(
        queryset=active_tags(TagKind.MESSAGE),
        empty_label="Choose a message",
        error_messages=_required("Choose a message."),
    )
    themes = TagMultipleChoiceField(
        queryset=active_tags(TagKind.THEME),
        widget=forms.CheckboxSelectMultiple,
        error_messages=_required("Choose at least one theme."),
    )
    tonality = TagChoiceField(
        queryset=active_tags(TagKind.TONALITY),
        empty_label="Choose a tonality",
        error_messages=_required("Choose a tonality."),
    )
    format = TagChoiceField(
        queryset=active_tags(TagKind.FORMAT),
        empty_label="Choose a format",
        error_messages=_required("Choose a format."),
    )
    channels = ChannelMultipleChoiceField(
        queryset=Channel.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        error_messages=_required("Choose at least one channel."),
    )
    references = ReferenceMultipleChoiceField(
        queryset=Reference.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick the references that support the claims; find one by typing part of "
        "its citation. Link each claim to its reference in “Claims and references” after saving.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="After this date the module is never served, even if approved.",
    )
    variant_of = ModuleChoiceField(
        queryset=Module.objects.none(),
        required=False,
        label="Variant of",
        empty_label="Not a variant (a new key message)",
        help_text="Pick the module whose key message this one carries in another tonality "
        "or format.",
    )
    image = forms.FileField(
        required=False,
        label="Image file",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    remove_image = forms.BooleanField(required=False, label="Remove the current image")
    image_alt = forms.CharField(
        max_length=300,
        required=False,
        label="Alt text",
        help_text="What the image shows, for people who cannot see it. Left blank, the "
        "headline is used.",
    )

    def __init__(self, *args: Any, module: Module | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.module = module
        self.processed_image = None
        self.image_too_large = False
        body_max = settings.MODULE_BODY_MAX_CHARS
        self.fields["body"].help_text = f"Up to {body_max:,} characters."
        self.fields["body"].widget.attrs["data-max-chars"] = str(body_max)
        max_mb = settings.IMAGE_MAX_BYTES // (1024 * 1024)
        self.fields["image"].help_text = f"JPEG, PNG or WebP, up to {max_mb} MB."
        if not Reference.objects.exists():
            # An empty list box only puzzles people; the template explains instead.
            del self.fields["references"]
        if module is None:
            del self.fields["remove_image"]
            # Variants hang off the first module of a key message (module_create
            # re-roots them anyway), so only those roots are offered.
            cast(forms.ModelChoiceField, self.fields["variant_of"]).queryset = (
                Module.objects.filter(latest__isnull=False, variant_of__isnull=True)
                .select_related("latest", "brand", "market")
                .order_by("brand__name", "market__code", "-id")
            )
        else:
            # Brand, market and the variant family belong to the module, not a version.
            for name in ("brand", "market", "variant_of"):
                del self.fields[name]
            if not (module.latest and module.latest.image_id):
                del self.fields["remove_image"]
            if module.latest:
                self._keep_current_tags(module.latest)

    def _keep_current_tags(self, version: ModuleVersion) -> None:
        # A term retired after this version was written must not block its next edit.
        current = {
            "message": [version.message_id],
            "tonality": [version.tonality_id],
            "format": [version.format_id],
            "themes": [t.pk for t in version.themes.all()],
        }
        for name, pks in current.items():
            field = cast(forms.ModelChoiceField, self.fields[name])
            kind = TagKind.THEME if name == "themes" else name
            field.queryset = Tag.objects.filter(Q(kind=kind, active=True) | Q(pk__in=pks)).order_by(
                "label"
            )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        limit = settings.MODULE_BODY_MAX_CHARS
        if len(body) > limit:
            raise forms.ValidationError(
                f"The body is {len(body):,} characters; the limit is {limit:,}. "
                f"Shorten it by {len(body) - limit:,}."
            )
        return body

    def clean_expires_on(self):
        expires_on = self.cleaned_data.get("expires_on")
        if expires_on is not None and expires_on < timezone.localdate():
            raise forms.ValidationError(
                f"The expiry date {expires_on:%d %b %Y} is in the past; choose today or later."
            )
        problem = bounds.expiry_problem(expires_on) if expires_on is not None else None
        if problem:
            raise forms.ValidationError(problem)
        return expires_on

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if not upload:
            return None
        try:
            self.processed_image = process_image_upload(upload)
        except DomainError as exc:
            self.image_too_large = exc.status_code == 413
            raise forms.ValidationError(exc.message)
        return upload

    def add_domain_error(self, exc: DomainError) -> None:
        """Show an error raised by a library action next to the field it names."""
        field = exc.field if exc.field in self.fields else None
        self.add_error(field, exc.message)

    def content_values(self) -> dict[str, Any]:
        """The cleaned content fields, keyed as the library actions expect."""
        data = self.cleaned_data
        values: dict[str, Any] = {}
        for key in SCALAR_FIELDS + M2M_FIELDS:
            if key == "image":
                continue
            value = data.get(key)
            if key in ("call_to_action", "image_alt"):
                value = (value or "").strip()
            if key in M2M_FIELDS:
                value = list(value or [])
            values[key] = value
        return values

    def version_content(self, image=None) -> VersionContent:
        """A VersionContent for module_create."""
        return VersionContent(**self.content_values(), image=image)

    def changes_from(self, version: ModuleVersion, image=None) -> dict[str, Any]:
        """Only what differs from ``version``; an empty dict means nothing to save."""
        changes: dict[str, Any] = {}
        for key, value in self.content_values().items():
            current = getattr(version, key)
            if key in M2M_FIELDS:
                if {o.pk for o in current.all()} != {o.pk for o in value}:
                    changes[key] = value
            elif current != value:
                changes[key] = value
        if image is not None:
            changes["image"] = image
        elif self.cleaned_data.get("remove_image") and version.image_id:
            changes["image"] = None
        return changes

    @classmethod
    def initial_from(cls, version: ModuleVersion) -> dict[str, Any]:
        """Form initial data from an existing version."""
        return {
            "title": version.title,
            "headline": version.headline,
            "body": version.body,
            "key_message": version.key_message,
            "call_to_action": version.call_to_action,
            "message": version.message_id,
            "tonality": version.tonality_id,
            "format": version.format_id,
            "themes": [t.pk for t in version.themes.all()],
            "channels": [c.pk for c in version.channels.all()],
            "references": [r.pk for r in version.references.all()],
            "expires_on": version.expires_on,
            "image_alt": version.image_alt,
        }


class ReferenceForm(forms.Form):
    """Add a reference to the library: a citation, a DOI or URL, and the PDF."""

    citation = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="As it will be cited, e.g. Smith J et al. N Engl J Med 2025;392:101-10.",
        error_messages=_required("Give the citation."),
    )
    doi = forms.CharField(
        max_length=250,
        required=False,
        label="DOI",
        help_text="e.g. 10.1056/NEJMoa2034577 (a https://doi.org/ link works too).",
    )
    url = forms.CharField(
        max_length=500,
        required=False,
        label="URL",
        widget=forms.URLInput,
        help_text="Where the source is published, if it has no DOI.",
    )
    pdf = forms.FileField(
        required=False,
        label="PDF",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf"}),
        help_text="The full text, so reviewers can check the claims against it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        max_mb = settings.REFERENCE_PDF_MAX_BYTES / (1024 * 1024)
        self.fields["pdf"].help_text += f" Up to {max_mb:g} MB."

    def add_domain_error(self, exc: DomainError) -> None:
        """Show an action's refusal beside the field it names."""
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class ClaimLinkForm(forms.Form):
    """Link a selected claim (field, start, end, quote) to a reference of the version."""

    field = forms.ChoiceField(choices=ClaimField.choices)
    start = forms.IntegerField(min_value=0, max_value=2**31 - 1)
    end = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    quote = forms.CharField(required=False, max_length=20000, strip=False)
    reference = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    locator = forms.CharField(required=False, max_length=300, label="Page or passage")
