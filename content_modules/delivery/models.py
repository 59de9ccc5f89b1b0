"""What delivery remembers: every recommendation answered, and the catalogue generation."""

from __future__ import annotations

import os
import time
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class DeliveryGeneration(models.Model):
    """One row whose ``value`` changes whenever the set of approved versions changes.

    A database trigger on ``library_moduleversion`` bumps it in the same
    transaction as any approval, supersession, withdrawal, expiry or deletion
    (migration 0002), to a value never used before (a PostgreSQL sequence, or
    63 random bits on SQLite), and the ``delivery_changed`` receiver bumps it
    too. Every process compares it with the generation of its in-memory
    catalogue on each request. ``epoch`` is drawn when the row is (re)created, so a database that
    was flushed or restored never matches a catalogue built from another one.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)
    epoch = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"generation {self.epoch[:8]}/{self.value}"


def uuid7() -> uuid.UUID:
    """A version-7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Time-ordered ids land at the right edge of the primary-key index, so
    logging an answer touches one hot index page instead of a random one.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


class Recommendation(models.Model):
    """One answer of ``POST /api/v1/recommendations``, kept for the learning loop."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    hcp = models.ForeignKey(
        "affinity.HCP",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recommendations",
    )
    # Kept even for an HCP unknown at request time, so later events still join.
    hcp_external_id = models.CharField(max_length=64, db_index=True)
    request = models.JSONField(default=dict, help_text="The request body as validated.")
    model_version = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    policy = models.CharField(
        max_length=40,
        help_text="'greedy', or 'epsilon-greedy(0.1)' when the caller asked to explore.",
    )
    explored = models.BooleanField(default=False, help_text="At least one item was explored.")
    cold_start = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True, help_text="Why items are empty.")
    kind = models.CharField(
        max_length=24,
        default="recommendation",
        help_text="'recommendation', or 'next_best_action' (items carry channel and send_at).",
    )
    # The experiment and arm the answer followed (experiments.assignment). No database
    # check: it would share-lock the experiment's row on every logged answer.
    experiment = models.ForeignKey(
        "experiments.Experiment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    arm = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Partial: answers outside experiments (most) cost the index nothing.
            models.Index(
                fields=["experiment", "arm"],
                name="recommendation_experiment_arm",
                condition=models.Q(experiment__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"recommendation {self.pk} for {self.hcp_external_id}"


class RecommendationItem(models.Model):
    """One item shown: which version at which rank, its score and logged propensity."""

    # No index of its own: the unique (recommendation, rank) index serves lookups by it.
    # No database check either: an answer and its items are written by one statement
    # (log.store), so an item never names a missing answer. A foreign-key check
    # would run per item a plan cached per connection; planned while the log was empty
    # (a fresh database, analyzed), it scans the whole log, growing with every answer.
    recommendation = models.ForeignKey(
        Recommendation,
        on_delete=models.CASCADE,
        related_name="items",
        db_index=False,
        db_constraint=False,
    )
    rank = models.PositiveSmallIntegerField()
    slot = models.CharField(max_length=64, blank=True)
    # Not enforced by the database: a foreign-key check takes a share lock on the
    # referenced row, and every answer would lock the most recommended modules and
    # versions (contended locks become multixacts, each a WAL record). The values come
    # from the catalogue of approved versions, which are never deleted; the ORM still
    # cascades a deletion.
    module = models.ForeignKey(
        "library.Module", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    version = models.ForeignKey(
        "library.ModuleVersion", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    score = models.FloatField()
    propensity = models.FloatField(
        help_text="Probability that the policy chose this item at this rank, given earlier ranks."
    )
    explored = models.BooleanField(default=False)
    frequency_capped = models.BooleanField(default=False)
    # Next best actions only: where and when to send it.
    channel = models.CharField(max_length=32, blank=True, default="")
    send_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["recommendation", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["recommendation", "rank"], name="recommendation_item_unique_rank"
            ),
            models.UniqueConstraint(
                fields=["recommendation", "module"], name="recommendation_item_unique_module"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} module {self.module_id} v{self.version_id}"


class IdempotentRequest(models.Model):
    """One answered call made with an ``Idempotency-Key``: a retry replays its answer.

    Keys are scoped per caller (the token's user) and per endpoint (``scope``).
    The unique constraint is what makes concurrent retries safe: the second
    insert waits for the first transaction and then finds its row, so one
    answer is logged however many retries race (``idempotency.py``).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=32, help_text="The endpoint: recommendations, train...")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the canonical body.")
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(help_text="The answer's body, replayed as sent.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "scope", "key"], name="idempotent_request_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope} key {self.key[:16]} of user {self.user_id}"


class ContentChange(models.Model):
    """One change of the approved set, for engines that keep a local copy (``changes.py``).

    Written only by a database trigger on ``library_moduleversion`` (migration
    0007) in the transaction that approves, supersedes, withdraws, expires or
    deletes a version, whichever code path does it, so a change is visible
    exactly when the state it describes is. On PostgreSQL the trigger takes a
    transaction-level lock before it draws the id, so ids are drawn in commit
    order and the id is a cursor no later commit can fall behind.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(
        max_length=16,
        help_text="'approved', or the status the version left approval for.",
    )
    module_id = models.BigIntegerField()
    version_id = models.BigIntegerField()
    number = models.PositiveIntegerField()
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"change {self.pk}: version {self.version_id} {self.kind}"
