"""The content library: vocabularies, brands, modules, versions, assets, references."""

from __future__ import annotations

import hashlib
import json
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone


class TagKind(models.TextChoices):
    MESSAGE = "message", "Message"
    THEME = "theme", "Theme"
    TONALITY = "tonality", "Tonality"
    FORMAT = "format", "Format"


class Tag(models.Model):
    """One term of a controlled vocabulary (message, theme, tonality or format)."""

    kind = models.CharField(max_length=16, choices=TagKind.choices)
    slug = models.SlugField(max_length=64)
    label = models.CharField(max_length=120)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "label"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "slug"], name="tag_unique_kind_slug")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.slug}"


class Channel(models.Model):
    """A channel a module may run in (email, rep-triggered email, web, ...)."""

    slug = models.SlugField(max_length=32, unique=True)
    label = models.CharField(max_length=80)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Brand(models.Model):
    """A product brand; its review roles default to settings.REQUIRED_REVIEW_ROLES."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    review_roles = models.JSONField(
        default=list,
        blank=True,
        help_text="Review roles required for this brand; empty means the default roles.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def required_review_roles(self) -> list[str]:
        """The review roles that must all approve a version of this brand."""
        return list(self.review_roles or settings.REQUIRED_REVIEW_ROLES)


class Market(models.Model):
    """A market (country or region) content is approved for, e.g. UK."""

    code = models.SlugField(max_length=16, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


def _reference_upload_to(instance: Reference, filename: str) -> str:
    return f"references/{timezone.now():%Y/%m}/{filename}"


class Reference(models.Model):
    """A citation behind a claim: text, optional URL, optional PDF."""

    citation = models.TextField()
    # A DOI as "10.<registrant>/<suffix>" (no resolver prefix); blank when none.
    doi = models.CharField(max_length=200, blank=True, db_index=True)
    url = models.URLField(max_length=500, blank=True)
    pdf = models.FileField(upload_to=_reference_upload_to, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.citation[:80]


class ImageAsset(models.Model):
    """An uploaded image, re-encoded from pixels with every metadata block dropped.

    Assets are immutable: a new upload makes a new asset, so versions that
    share one keep showing exactly what was reviewed.
    """

    image = models.ImageField(upload_to="images/full/", width_field="width", height_field="height")
    web = models.ImageField(upload_to="images/web/")
    thumbnail = models.ImageField(upload_to="images/thumb/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    format = models.CharField(max_length=8)
    sha256 = models.CharField(max_length=64, db_index=True)
    original_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.original_name or self.sha256[:12]} ({self.width}x{self.height})"


class Module(models.Model):
    """A reusable content block for one brand and market; its content lives in versions."""

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="modules")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="modules")
    variant_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="variants",
        help_text="The module whose key message this one carries in another tonality or format.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="modules_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Denormalised pointer to the newest version (whatever its state), kept by the
    # library actions, so lists and filters need no per-row subquery.
    latest = models.ForeignKey(
        "ModuleVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        latest = self.latest_version()
        return f"Module {self.pk}: {latest.title if latest else ''}"

    def latest_version(self) -> ModuleVersion | None:
        """The newest version, whatever its state."""
        return self.versions.order_by("-number").first()

    def approved_version(self) -> ModuleVersion | None:
        """The version approved now (unexpired), or None."""
        return ModuleVersion.objects.approved_now().filter(module=self).first()

    def variant_root_id(self) -> int:
        """The id shared by all variants of one key message."""
        return self.variant_of_id or self.pk


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


# A module has at most one working version: the one authors edit or reviewers review.
WORKING_STATUSES = (VersionStatus.DRAFT, VersionStatus.IN_REVIEW)
# Versions whose content may never change again.
FROZEN_STATUSES = tuple(s for s in VersionStatus if s != VersionStatus.DRAFT)
# Versions that are history: a new edit starts the next version.
CLOSED_STATUSES = (
    VersionStatus.CHANGES_REQUESTED,
    VersionStatus.REJECTED,
    VersionStatus.SUPERSEDED,
    VersionStatus.EXPIRED,
    VersionStatus.WITHDRAWN,
)


class ModuleVersionQuerySet(QuerySet):
    def approved_now(self, today: date | None = None) -> ModuleVersionQuerySet:
        """Versions approved and not past their expiry date today (invariant 1).

        The expiry date is checked here, at query time, so content is never
        served after it expires even before the expiry job has run.
        """
        today = today or timezone.localdate()
        return self.filter(status=VersionStatus.APPROVED).filter(
            Q(expires_on__isnull=True) | Q(expires_on__gte=today)
        )

    def working(self) -> ModuleVersionQuerySet:
        """Versions an author is editing or reviewers are reviewing."""
        return self.filter(status__in=WORKING_STATUSES)

    def for_channel(self, channel: str) -> ModuleVersionQuerySet:
        return self.filter(channels__slug=channel)

    def for_brand(self, brand: str) -> ModuleVersionQuerySet:
        return self.filter(module__brand__slug=brand)

    def for_market(self, market: str) -> ModuleVersionQuerySet:
        return self.filter(module__market__code=market)

    def with_content(self) -> ModuleVersionQuerySet:
        """Load everything a rendered version shows, without N+1 queries."""
        return self.select_related(
            "module__brand", "module__market", "message", "tonality", "format", "image"
        ).prefetch_related("themes", "channels", "references")


class ModuleVersion(models.Model):
    """One version of a module's content, the unit that MLR review approves."""

    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT, db_index=True
    )

    title = models.CharField(max_length=200)
    headline = models.CharField(max_length=300)
    body = models.TextField()
    key_message = models.CharField(max_length=500)
    call_to_action = models.CharField(max_length=200, blank=True)
    message = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": "message"}
    )
    themes = models.ManyToManyField(Tag, related_name="+", limit_choices_to={"kind": "theme"})
    tonality = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": "tonality"}
    )
    format = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="+", limit_choices_to={"kind": "format"}
    )
    channels = models.ManyToManyField(Channel, related_name="versions")
    references = models.ManyToManyField(Reference, blank=True, related_name="versions")
    image = models.ForeignKey(
        ImageAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    image_alt = models.CharField(
        max_length=300,
        blank=True,
        help_text="The image's text alternative for screen readers; blank uses the headline.",
    )
    expires_on = models.DateField(null=True, blank=True)

    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="versions_authored"
    )
    editors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="versions_edited",
        blank=True,
        help_text="Everyone who wrote content into this version (segregation of duties).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    objects = ModuleVersionQuerySet.as_manager()

    class Meta:
        ordering = ["module_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["module", "number"], name="version_unique_number"),
            models.UniqueConstraint(
                fields=["module"],
                condition=Q(status="approved"),
                name="version_one_approved_per_module",
            ),
            models.UniqueConstraint(
                fields=["module"],
                condition=Q(status__in=["draft", "in_review"]),
                name="version_one_working_per_module",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_on"], name="version_status_expiry")]

    def __str__(self) -> str:
        return f"{self.title} v{self.number} ({self.status})"

    @property
    def is_frozen(self) -> bool:
        return self.status != VersionStatus.DRAFT

    @property
    def image_alt_text(self) -> str:
        """What every <img> of this version says: the author's alt text, else the headline."""
        return self.image_alt.strip() or self.headline

    def is_approved_now(self, today: date | None = None) -> bool:
        """Approved and not past its expiry date."""
        today = today or timezone.localdate()
        return self.status == VersionStatus.APPROVED and (
            self.expires_on is None or self.expires_on >= today
        )

    def content_dict(self) -> dict:
        """Everything that was reviewed, in a stable form (for hashing and diffs)."""
        return {
            "title": self.title,
            "headline": self.headline,
            "body": self.body,
            "key_message": self.key_message,
            "call_to_action": self.call_to_action,
            "message": self.message.slug,
            "themes": sorted(t.slug for t in self.themes.all()),
            "tonality": self.tonality.slug,
            "format": self.format.slug,
            "channels": sorted(c.slug for c in self.channels.all()),
            "references": sorted(r.pk for r in self.references.all()),
            "image": self.image.sha256 if self.image is not None else None,
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "brand": self.module.brand.slug,
            "market": self.module.market.code,
            # Only when written, so the hash of every version signed before the field
            # existed (all of them blank) is unchanged and its signatures still verify.
            **({"image_alt": self.image_alt} if self.image_alt else {}),
        }

    def compute_content_hash(self) -> str:
        """The sha256 of the version's content; signatures bind to it."""
        encoded = json.dumps(self.content_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def tags_dict(self) -> dict:
        """Tags as the API shows them."""
        return {
            "message": self.message.slug,
            "theme": sorted(t.slug for t in self.themes.all()),
            "tonality": self.tonality.slug,
            "format": self.format.slug,
        }

    def embedding_text(self) -> str:
        """The text the embedding model reads."""
        return embedding_text_of(self.headline, self.body, self.key_message, self.call_to_action)


def embedding_text_of(headline: str, body: str, key_message: str, call_to_action: str) -> str:
    """The text the embedding model reads, from the fields as written (or as typed)."""
    parts = [headline, body, key_message, call_to_action]
    return "\n".join(p for p in parts if p)


class ClaimField(models.TextChoices):
    """The text fields a claim can be selected in."""

    HEADLINE = "headline", "Headline"
    BODY = "body", "Body"
    KEY_MESSAGE = "key_message", "Key message"


class ClaimLink(models.Model):
    """A claim (a span [start, end) of one text field of a version) linked to a reference.

    Anchored like a review annotation: the span and the quoted text, so the link
    can be re-anchored on the next version while its text still matches.
    """

    version = models.ForeignKey(ModuleVersion, on_delete=models.CASCADE, related_name="claim_links")
    field = models.CharField(max_length=20, choices=ClaimField.choices)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    quoted_text = models.TextField()
    reference = models.ForeignKey(Reference, on_delete=models.PROTECT, related_name="claim_links")
    # Where in the reference: "p. 4", "Table 2", a quoted passage (optional).
    locator = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The link of the previous version this one was carried from.
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )

    class Meta:
        ordering = ["version_id", "field", "start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="claim_link_span"),
            models.UniqueConstraint(
                fields=["version", "field", "start", "end", "reference"],
                name="claim_link_once_per_span_and_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.field}[{self.start}:{self.end}] -> reference {self.reference_id}"


class FrozenVersionError(Exception):
    """Raised when code tries to change the content of a frozen version."""


CONTENT_FIELDS = (
    "title",
    "headline",
    "body",
    "key_message",
    "call_to_action",
    "message_id",
    "tonality_id",
    "format_id",
    "image_id",
    "image_alt",
    "expires_on",
)


def _guard_frozen(sender, instance: ModuleVersion, **kwargs) -> None:
    """Refuse any save that changes the content of a non-draft version (invariant 2)."""
    if instance._state.adding or instance.pk is None:
        return
    try:
        stored = ModuleVersion.objects.only(*CONTENT_FIELDS, "status").get(pk=instance.pk)
    except ModuleVersion.DoesNotExist:
        return
    if stored.status == VersionStatus.DRAFT:
        return
    changed = [f for f in CONTENT_FIELDS if getattr(stored, f) != getattr(instance, f)]
    if changed:
        raise FrozenVersionError(
            f"Version {instance.pk} is {stored.status}; its content cannot change "
            f"(tried to change {', '.join(changed)})."
        )


def _guard_frozen_m2m(sender, instance, action: str, **kwargs) -> None:
    if action in {"pre_add", "pre_remove", "pre_clear"} and isinstance(instance, ModuleVersion):
        status = ModuleVersion.objects.filter(pk=instance.pk).values_list("status", flat=True)
        if status and status[0] != VersionStatus.DRAFT:
            raise FrozenVersionError(f"Version {instance.pk} is {status[0]}; its tags are frozen.")


models.signals.pre_save.connect(_guard_frozen, sender=ModuleVersion)
for _m2m in (
    ModuleVersion.themes.through,
    ModuleVersion.channels.through,
    ModuleVersion.references.through,
):
    models.signals.m2m_changed.connect(_guard_frozen_m2m, sender=_m2m)
