"""Experiments: arms with their policies, a holdout, the traffic they apply to."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    RUNNING = "running"
    STOPPED = "stopped"
    ARCHIVED = "archived"


class Policy(models.TextChoices):
    MODEL = "model"  # the normal path: the affinity model, as without an experiment
    RANDOM = "random"  # uniform over the gated candidates (epsilon-greedy with epsilon 1)
    POPULARITY = "popularity"  # smoothed engagement rate per version
    FIXED = "fixed"  # only the arm's modules (still gated), ranked by the model


class Metric(models.TextChoices):
    CLICK = "click"
    OPEN = "open"


# The event type that counts as a success for each metric.
METRIC_EVENT = {Metric.CLICK: "clicked", Metric.OPEN: "opened"}
HOLDOUT_ARM = "holdout"


class Experiment(models.Model):
    """One A/B test over the recommendations whose request matches its traffic.

    ``arms`` is a list of ``{"name", "policy", "modules"}``; the first arm is
    the reference that lifts are measured against. Traffic dimensions left
    null match any request. The assignment of an HCP is a hash (never stored).
    """

    name = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    arms = models.JSONField(help_text="[{name, policy, modules}], the first is the reference.")
    holdout = models.FloatField(default=0.0, help_text="Share of HCPs kept on the plain model.")
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.CLICK)
    brand = models.CharField(max_length=64, null=True, blank=True)
    market = models.CharField(max_length=16, null=True, blank=True)
    channel = models.CharField(max_length=32, null=True, blank=True)
    # HCPs of one engagement microsegment only ("ms-3", HCP.microsegment); null: any.
    microsegment = models.CharField(max_length=16, null=True, blank=True)
    min_detectable_lift = models.FloatField(
        null=True, blank=True, help_text="Absolute rate difference the power figure aims at."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status"], name="experiment_status")]

    def __str__(self) -> str:
        return f"experiment {self.pk} {self.name} ({self.status})"

    @property
    def traffic(self) -> dict[str, str | None]:
        return {
            "brand": self.brand,
            "market": self.market,
            "channel": self.channel,
            "microsegment": self.microsegment,
        }


class ExperimentGeneration(models.Model):
    """One row whose ``value`` changes whenever the set of running experiments changes.

    Read with the recommendation's snapshot (``delivery.services._snapshot``), so
    every process notices a started or stopped experiment on its next request
    without a query of its own. Locked by the actions that start, stop and
    archive, which also serialises the check that two running experiments never
    share traffic.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"experiment generation {self.value}"
