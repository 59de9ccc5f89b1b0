"""HCPs, engagement events, text embeddings and trained affinity models."""

from __future__ import annotations

import uuid

import numpy as np
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

EXTERNAL_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
external_id_validator = RegexValidator(
    EXTERNAL_ID_RE,
    "An external id is 1-64 characters: letters, digits, '.', '_', ':' or '-', "
    "starting with a letter or digit.",
)


class HCP(models.Model):
    """A healthcare professional, known only by the caller's pseudonymous id."""

    external_id = models.CharField(max_length=64, unique=True, validators=[external_id_validator])
    specialty = models.CharField(max_length=64, blank=True, db_index=True)
    segment = models.CharField(max_length=64, blank=True, db_index=True)
    region = models.CharField(max_length=64, blank=True)
    preferred_channel = models.CharField(max_length=32, blank=True)
    timezone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA time zone, e.g. Europe/London; blank: the market's (localtime.py).",
    )
    # The engagement model's cluster ("ms-3", engagement.Microsegment.key), set by
    # each fit; blank until the first one.
    microsegment = models.CharField(max_length=16, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = "HCP"
        verbose_name_plural = "HCPs"

    def __str__(self) -> str:
        return self.external_id


class EventType(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    READ = "read", "Read"
    DISMISSED = "dismissed", "Dismissed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


def unsubscribed_from(channels) -> set[str]:
    """The channels of unsubscribe events; one without a channel (``"*"``) means every one."""
    return {str(c or "") or "*" for c in channels}


class EngagementEvent(models.Model):
    """One engagement event reported by the engine; idempotent by ``event_id``.

    Stored first, in the request's transaction. ``processed_at`` stays empty
    until derived work (counters, model updates) has consumed it, so a sweeper
    can find what was missed while Redis or the workers were down.
    """

    event_id = models.UUIDField(unique=True)
    hcp = models.ForeignKey(HCP, on_delete=models.CASCADE, related_name="events")
    module = models.ForeignKey(
        "library.Module", on_delete=models.CASCADE, related_name="engagement_events"
    )
    version = models.ForeignKey(
        "library.ModuleVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="engagement_events",
    )
    type = models.CharField(max_length=16, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    channel = models.CharField(max_length=32, blank=True)
    recommendation_id = models.UUIDField(null=True, blank=True)
    dwell_seconds = models.FloatField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at"]
        indexes = [
            # Covering on PostgreSQL: a recommendation reads an HCP's events from the
            # index alone (an index-only scan), not from pages all over the table.
            models.Index(
                fields=["hcp", "occurred_at"],
                name="event_hcp_time",
                include=["type", "module", "version", "dwell_seconds", "channel"],
            ),
            models.Index(fields=["occurred_at"], name="event_time"),
            models.Index(
                fields=["recommendation_id"],
                name="event_recommendation",
                condition=Q(recommendation_id__isnull=False),
            ),
            models.Index(
                fields=["received_at"],
                name="event_unprocessed",
                condition=Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.hcp_id}->{self.module_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class VersionEmbedding(models.Model):
    """The text embedding of one module version, with the model that produced it."""

    version = models.OneToOneField(
        "library.ModuleVersion", on_delete=models.CASCADE, related_name="embedding"
    )
    model_name = models.CharField(max_length=200)
    model_sha256 = models.CharField(max_length=64, blank=True)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    text_sha256 = models.CharField(max_length=64)
    # The same text cut into clauses (headline, each sentence, key message, call to
    # action), each embedded on its own: float32 (n_clauses, dim) row after row.
    # The model reads what the text says beyond its tags from these (learning.topics).
    clause_vectors = models.BinaryField(default=b"", blank=True)
    n_clauses = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"embedding of version {self.version_id} ({self.model_name})"

    def as_array(self) -> np.ndarray:
        """The vector as float32 numpy array."""
        return np.frombuffer(bytes(self.vector), dtype=np.float32)


class ModelStatus(models.TextChoices):
    """The champion/challenger gate's verdict on a trained model (``learning/gate.py``)."""

    UNGATED = "ungated", "Not gated"  # trained before the gate existed
    PASSED = "passed", "Passed the gate"
    REJECTED = "rejected", "Rejected by the gate"
    FORCED = "forced", "Rejected, activated by an admin"


class AffinityModel(models.Model):
    """One trained affinity model; at most one is active at a time.

    Only a model the gate passed is activated by training; a rejected one is
    kept with the gate's ``reason`` and may be activated by an admin with an
    ``override_reason`` (status ``forced``, audited).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_version = models.CharField(max_length=80, unique=True)
    trained_at = models.DateTimeField()
    n_events = models.PositiveBigIntegerField(default=0)
    n_hcps = models.PositiveBigIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_model_sha256 = models.CharField(max_length=64, blank=True)
    artifact = models.BinaryField(help_text="The serialized model (npz bytes).")
    is_active = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.UNGATED
    )
    reason = models.TextField(blank=True, help_text="The gate's verdict, in words.")
    override_reason = models.TextField(blank=True, help_text="Why an admin activated it anyway.")
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-trained_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_affinity_model"
            )
        ]

    def __str__(self) -> str:
        return self.model_version


class TrainingRequest(models.Model):
    """A request for a training run: the outbox row that makes it survive a broker outage.

    Written before the task is sent. A request the broker never took (Redis
    down) stays with ``queued_at`` empty until the periodic sweeper
    (``tasks.train_pending_task``) runs it; a run marks every request made
    before it started as answered, and a task redelivered for an answered
    request does not train again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    evaluate = models.BooleanField(default=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model_version = models.CharField(max_length=80, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            models.Index(
                fields=["requested_at"],
                condition=Q(finished_at__isnull=True),
                name="training_request_open",
            )
        ]

    def __str__(self) -> str:
        return f"training request {self.id}"
