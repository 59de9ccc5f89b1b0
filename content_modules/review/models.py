"""MLR review: reviews, role tasks, e-signatures, annotations and reference checks."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from content_modules.accounts.roles import ReviewRole
from content_modules.library.models import ModuleVersion, Reference


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    # Closed by an admin or an author before every role decided (closed_by, close_reason).
    RECALLED = "recalled", "Recalled"
    CANCELLED = "cancelled", "Cancelled"


class Review(models.Model):
    """One submission of a version to MLR review; its tasks run in parallel."""

    version = models.ForeignKey(ModuleVersion, on_delete=models.PROTECT, related_name="reviews")
    # Which review of this version this is: 1 for its first, counted per version, so the
    # first review of version 2 is round 1 of version 2 (migration 0003 renumbered older rows).
    round = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.OPEN, db_index=True
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Who recalled the round and why (blank unless recalled).
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    close_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status="open"),
                name="review_one_open_per_version",
            ),
            models.UniqueConstraint(
                fields=["version", "round"], name="review_round_unique_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"Review {self.pk} of version {self.version_id} ({self.status})"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


# A reviewer's signed outcomes, and every state a task never leaves.
TASK_DECIDED = (TaskStatus.APPROVED, TaskStatus.CHANGES_REQUESTED, TaskStatus.REJECTED)
TASK_CLOSED = (*TASK_DECIDED, TaskStatus.CANCELLED)


class Decision(models.TextChoices):
    """What a reviewer may decide on a task (the API's ``decision`` values)."""

    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"
    REJECT = "reject", "Reject"


class ReviewTaskQuerySet(models.QuerySet):
    def open(self) -> ReviewTaskQuerySet:
        """Tasks still waiting for a decision."""
        return self.filter(status=TaskStatus.OPEN)

    def overdue(self, now=None) -> ReviewTaskQuerySet:
        """Open tasks past their due date."""
        return self.open().filter(due_at__lt=now or timezone.now())

    def with_context(self) -> ReviewTaskQuerySet:
        """Load what a task list shows (version, module, brand, people) in one query."""
        return self.select_related(
            "review",
            "version__module__brand",
            "version__module__market",
            "assignee",
            "decided_by",
        )


class ReviewTask(models.Model):
    """One review role's part of a review (medical, legal or regulatory)."""

    review = models.ForeignKey(Review, on_delete=models.PROTECT, related_name="tasks")
    # Denormalised from the review so queues filter and join without it.
    version = models.ForeignKey(ModuleVersion, on_delete=models.PROTECT, related_name="tasks")
    role = models.CharField(max_length=16, choices=ReviewRole.choices)
    status = models.CharField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN, db_index=True
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="review_tasks",
    )
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    objects = ReviewTaskQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "role"], name="task_one_per_role_per_review")
        ]
        indexes = [models.Index(fields=["status", "role", "due_at"], name="task_queue")]

    def __str__(self) -> str:
        return f"{self.role} task {self.pk} ({self.status})"

    def is_overdue(self, now=None) -> bool:
        """Open and past its due date."""
        return self.status == TaskStatus.OPEN and self.due_at < (now or timezone.now())


class SignatureMeaning(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Signature(models.Model):
    """An electronic signature bound to the exact content hash it was applied to."""

    version = models.ForeignKey(ModuleVersion, on_delete=models.PROTECT, related_name="signatures")
    task = models.ForeignKey(
        ReviewTask, null=True, blank=True, on_delete=models.PROTECT, related_name="signatures"
    )
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(max_length=300)
    # The review role the signer filled (blank for a withdrawal).
    role = models.CharField(max_length=16, choices=ReviewRole.choices, blank=True)
    meaning = models.CharField(max_length=20, choices=SignatureMeaning.choices)
    signed_at = models.DateTimeField(default=timezone.now)
    content_hash = models.CharField(max_length=64)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.printed_name}: {self.meaning} at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    def manifestation(self) -> str:
        """The human-readable manifestation: printed name, UTC time and meaning."""
        when = self.signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.printed_name}, {when}, {self.get_meaning_display()}"


class AnnotationField(models.TextChoices):
    TITLE = "title", "Title"
    HEADLINE = "headline", "Headline"
    BODY = "body", "Body"
    KEY_MESSAGE = "key_message", "Key message"
    CALL_TO_ACTION = "call_to_action", "Call to action"


class Annotation(models.Model):
    """A comment anchored on a span [start, end) of one text field of a version."""

    version = models.ForeignKey(ModuleVersion, on_delete=models.CASCADE, related_name="annotations")
    field = models.CharField(max_length=20, choices=AnnotationField.choices)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    quoted_text = models.TextField()
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The quoted text no longer exists in the next version, so it was not carried over.
    outdated = models.BooleanField(default=False)
    # The annotation of the previous version this one was re-anchored from.
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    # A module's author says the next version answers this thread (the reviewer still
    # decides whether it did; ``resolved`` stays theirs). Copied when the thread is carried.
    addressed = models.BooleanField(default=False)
    addressed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    addressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version_id", "field", "start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="annotation_span")
        ]

    def __str__(self) -> str:
        return f"{self.field}[{self.start}:{self.end}] {self.text[:40]}"


class ReferenceCheck(models.Model):
    """A reviewer confirmed that a reference supports the claims of a version."""

    version = models.ForeignKey(
        ModuleVersion, on_delete=models.CASCADE, related_name="reference_checks"
    )
    task = models.ForeignKey(
        ReviewTask,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reference_checks",
    )
    reference = models.ForeignKey(Reference, on_delete=models.PROTECT, related_name="+")
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["checked_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "reference"], name="reference_checked_once_per_task"
            )
        ]

    def __str__(self) -> str:
        return f"reference {self.reference_id} checked on version {self.version_id}"


class ExpiryNotice(models.Model):
    """Owners were told a version expires soon (sent once per version)."""

    version = models.OneToOneField(
        ModuleVersion, on_delete=models.CASCADE, related_name="expiry_notice"
    )
    expires_on = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"expiry notice for version {self.version_id}"
