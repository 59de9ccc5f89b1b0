"""The engagement model (channel, send time, saturation) and its microsegments."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class EngagementModel(models.Model):
    """One fitted engagement model (``learning.py``); the newest fit is the active one.

    Fitted in the same training run as an affinity model, from the same events.
    ``artifact`` holds ``learning.EngagementParams`` (npz bytes).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_version = models.CharField(max_length=80, unique=True)
    trained_at = models.DateTimeField()
    affinity_model = models.ForeignKey(
        "affinity.AffinityModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="engagement_models",
    )
    n_deliveries = models.PositiveBigIntegerField(default=0)
    n_hcps = models.PositiveBigIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.BinaryField()
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-trained_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="one_active_engagement_model",
            )
        ]

    def __str__(self) -> str:
        return self.model_version


class Microsegment(models.Model):
    """One cluster of HCPs of one engagement model, with its label and strongest features.

    ``key`` ("ms-3") is stable across models: a new fit takes the key of the
    previous segment its centroid matches (``learning._stable_ids``).
    """

    model = models.ForeignKey(EngagementModel, on_delete=models.CASCADE, related_name="segments")
    key = models.CharField(max_length=16)
    label = models.CharField(max_length=200)
    size = models.PositiveIntegerField(default=0)
    features = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["model", "key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="microsegment_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.label}"
