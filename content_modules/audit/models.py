"""The append-only, hash-chained audit trail (compliance invariant 6)."""

from django.conf import settings
from django.db import models

from .actions import AuditAction


class AuditEntry(models.Model):
    """One state change, decision, signature, edit or withdrawal.

    ``entry_hash`` covers every field plus ``prev_hash``, the hash of the
    entry before it, so a changed or deleted row breaks the chain.
    """

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_entries",
    )
    actor_name = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=64, db_index=True, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    module_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    version_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The single row writers lock to append to the chain one at a time."""

    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_seq}"
