"""Celery beat task of the audit trail: write a signed chain checkpoint."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from . import checkpoints

logger = logging.getLogger(__name__)


@shared_task(
    name="content_modules.audit.tasks.write_checkpoint",
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=240,
    time_limit=300,
)
def write_checkpoint() -> str:
    """Sign the chain's last entry into AUDIT_CHECKPOINT_DIR (idempotent: one file per entry)."""
    try:
        return checkpoints.checkpoint_write().reason
    except ImproperlyConfigured as exc:
        logger.error("audit chain NOT checkpointed: %s", exc)
        return f"not checkpointed: {exc}"
    except checkpoints.ChainBrokenError as exc:
        # Never sign over a broken chain; an administrator must look (verify_audit).
        logger.error("audit chain NOT checkpointed, it does not verify: %s", exc)
        return f"not checkpointed: {exc}"
