"""Serializers of the review API: task lists, decisions, annotations, signatures."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from content_modules.accounts.roles import ReviewRole
from content_modules.library import claims
from content_modules.library.serializers import ClaimLinkSerializer, UnlinkedClaimSerializer

from .models import Annotation, AnnotationField, Decision, Review, ReviewTask, Signature
from .policy import decision_policy


class UTCDateTimeField(serializers.DateTimeField):
    """A datetime always rendered in UTC with a Z suffix (signature manifestation)."""

    def to_representation(self, value):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ReviewTaskSerializer(serializers.ModelSerializer):
    """One review task as the queue lists it."""

    module = serializers.IntegerField(source="version.module_id", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    version_status = serializers.CharField(source="version.status", read_only=True)
    title = serializers.CharField(source="version.title", read_only=True)
    brand = serializers.CharField(source="version.module.brand.slug", read_only=True)
    market = serializers.CharField(source="version.module.market.code", read_only=True)
    submitted_at = serializers.DateTimeField(source="review.submitted_at", read_only=True)
    round = serializers.IntegerField(
        source="review.round",
        read_only=True,
        help_text="Which review of this version the task belongs to (1 = its first review).",
    )
    overdue = serializers.SerializerMethodField()
    can_decide = serializers.SerializerMethodField(
        help_text="Whether the caller may sign a decision on this task now (the "
        "segregation-of-duties policy: role, open, assignment, not an author, one role per person)."
    )
    assignee: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the reviewer the task is assigned to; null: any of the role.",
    )
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the reviewer who decided.",
    )

    class Meta:
        model = ReviewTask
        fields = [
            "id",
            "review",
            "round",
            "role",
            "status",
            "module",
            "version",
            "version_id",
            "version_status",
            "title",
            "brand",
            "market",
            "submitted_at",
            "due_at",
            "overdue",
            "assignee",
            "decided_by",
            "decided_at",
            "comment",
            "reminded_at",
            "can_decide",
        ]
        read_only_fields = fields

    def get_overdue(self, task: ReviewTask) -> bool:
        now = self.context.get("now") or timezone.now()
        return task.is_overdue(now)

    @extend_schema_field(serializers.BooleanField())
    def get_can_decide(self, task: ReviewTask) -> bool:
        # A list passes the ids it computed for the whole page in one query.
        decidable = self.context.get("decidable_ids")
        if decidable is not None:
            return task.pk in decidable
        request = self.context.get("request")
        if request is None:
            return False
        return decision_policy.may_decide(request.user, task, version=task.version)


class SignatureSerializer(serializers.ModelSerializer):
    """A signature with its manifestation (printed name, UTC time, meaning)."""

    version = serializers.IntegerField(source="version.number", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    signer: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Username of the signer."
    )
    signed_at = UTCDateTimeField(read_only=True)
    manifestation = serializers.CharField(read_only=True)

    # Blank for signatures that belong to no review role (a withdrawal).
    role = serializers.ChoiceField(choices=ReviewRole.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Signature
        fields = [
            "id",
            "version",
            "version_id",
            "task",
            "role",
            "signer",
            "printed_name",
            "meaning",
            "signed_at",
            "content_hash",
            "reason",
            "manifestation",
        ]
        read_only_fields = fields


class TaskReferenceSerializer(serializers.Serializer):
    """A reference of the version under review and whether this task checked it."""

    id = serializers.IntegerField()
    citation = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    checked = serializers.BooleanField()


class ReviewTaskDetailSerializer(ReviewTaskSerializer):
    """One task with its version's key message, references and signatures."""

    key_message = serializers.CharField(source="version.key_message", read_only=True)
    content_hash = serializers.CharField(source="version.content_hash", read_only=True)
    references = serializers.SerializerMethodField()
    claim_links = serializers.SerializerMethodField()
    unlinked_claims = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()

    class Meta(ReviewTaskSerializer.Meta):
        fields = [
            *ReviewTaskSerializer.Meta.fields,
            "key_message",
            "content_hash",
            "references",
            "claim_links",
            "unlinked_claims",
            "signatures",
        ]
        read_only_fields = fields

    @extend_schema_field(ClaimLinkSerializer(many=True))
    def get_claim_links(self, task: ReviewTask) -> list[dict]:
        """Each claim of the version linked to its reference (and page or passage)."""
        links = claims.version_claim_links(task.version)
        return [ClaimLinkSerializer(link, context=self.context).data for link in links]

    @extend_schema_field(UnlinkedClaimSerializer(many=True))
    def get_unlinked_claims(self, task: ReviewTask) -> list[dict]:
        """Claim sentences (a number, a percentage, a comparative) that no link supports."""
        return [
            UnlinkedClaimSerializer(
                {
                    "field": c.field,
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                    "reason": c.reason,
                }
            ).data
            for c in claims.unlinked_claims(task.version)
        ]

    @extend_schema_field(TaskReferenceSerializer(many=True))
    def get_references(self, task: ReviewTask) -> list[dict]:
        checked = set(task.reference_checks.values_list("reference_id", flat=True))
        return [
            TaskReferenceSerializer(
                {"id": r.pk, "citation": r.citation, "url": r.url, "checked": r.pk in checked}
            ).data
            for r in task.version.references.order_by("pk")
        ]

    @extend_schema_field(SignatureSerializer(many=True))
    def get_signatures(self, task: ReviewTask) -> list[dict]:
        qs = task.signatures.select_related("version", "signer")
        return [SignatureSerializer(signature).data for signature in qs]


class DecisionSerializer(serializers.Serializer):
    """``{"decision", "comment", "password", "checked_references"}``."""

    decision = serializers.ChoiceField(choices=Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    # Not required here: a missing password is a failed signature (403, recorded).
    password = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=512
    )
    checked_references = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=1000
    )


class DecisionResultSerializer(serializers.Serializer):
    """The decided task and the signature applied."""

    task = ReviewTaskSerializer()
    signature = SignatureSerializer()


class ReassignSerializer(serializers.Serializer):
    """``{"assignee": user id}``."""

    assignee = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all())


class WithdrawSerializer(serializers.Serializer):
    """``{"reason", "password"}``."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    password = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=512
    )


class RecallSerializer(serializers.Serializer):
    """``{"reason"}``: why the open review round is closed before every role decided."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ReviewRoundSerializer(serializers.ModelSerializer):
    """One review round of a version: its outcome and every role's task."""

    module = serializers.IntegerField(source="version.module_id", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    version_status = serializers.CharField(source="version.status", read_only=True)
    recalled_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        source="closed_by",
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of who recalled the round; null unless it was recalled.",
    )
    recall_reason = serializers.CharField(
        source="close_reason", read_only=True, help_text="Why it was recalled; blank otherwise."
    )
    tasks = ReviewTaskSerializer(many=True, read_only=True)

    class Meta:
        model = Review
        extra_kwargs = {
            "round": {"help_text": "Which review of this version this is (1 = its first review)."}
        }
        fields = [
            "id",
            "round",
            "status",
            "module",
            "version",
            "version_id",
            "version_status",
            "submitted_at",
            "closed_at",
            "recalled_by",
            "recall_reason",
            "tasks",
        ]
        read_only_fields = fields


class AnnotationSerializer(serializers.ModelSerializer):
    """A comment anchored on a text span of one version."""

    version = serializers.IntegerField(source="version.number", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Username of the comment's author."
    )
    author_name = serializers.SerializerMethodField()
    resolved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of who resolved the thread.",
    )
    addressed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the author who marked the thread addressed.",
    )

    class Meta:
        model = Annotation
        fields = [
            "id",
            "version",
            "version_id",
            "field",
            "start",
            "end",
            "quoted_text",
            "text",
            "author",
            "author_name",
            "created_at",
            "parent",
            "resolved",
            "resolved_by",
            "resolved_at",
            "outdated",
            "origin",
            "addressed",
            "addressed_by",
            "addressed_at",
        ]
        read_only_fields = fields

    def get_author_name(self, annotation: Annotation) -> str:
        return annotation.author.get_full_name() or annotation.author.get_username()


class AnnotationWriteSerializer(serializers.Serializer):
    """``{"version", "field", "start", "end", "text"}``, or ``{"parent", "text"}`` to reply.

    ``version`` is the version number within the module (as the API shows
    it); ``version_id`` may be given instead.
    """

    version = serializers.IntegerField(required=False, min_value=1)
    version_id = serializers.IntegerField(required=False, min_value=1)
    field = serializers.ChoiceField(choices=AnnotationField.choices, required=False)
    start = serializers.IntegerField(required=False, min_value=0)
    end = serializers.IntegerField(required=False, min_value=0)
    text = serializers.CharField(max_length=10000)
    # The API's field name; DRF's metaclass moves declared fields off the class, so it
    # never shadows Field.parent at runtime (the stubs cannot know that).
    parent = serializers.IntegerField(required=False, min_value=1)  # type: ignore[assignment]

    def validate(self, attrs):
        if "parent" not in attrs:
            missing = [k for k in ("field", "start", "end") if k not in attrs]
            errors = {k: ["This field is required."] for k in missing}
            if "version" not in attrs and "version_id" not in attrs:
                errors["version"] = ["This field is required."]
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


class AnnotationAddressSerializer(serializers.Serializer):
    """``{"addressed": true}`` marks a thread addressed; ``false`` takes the mark back."""

    addressed = serializers.BooleanField(
        default=True, help_text="Whether the next version answers this comment."
    )
