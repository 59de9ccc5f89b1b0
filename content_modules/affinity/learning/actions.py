"""Actions behind the affinity API and pages: reading affinities, training, the model."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager

from django.core.cache import cache
from django.db import connection, transaction
from kombu.exceptions import OperationalError

from content_modules.accounts.roles import Role, has_role
from content_modules.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)

from ..models import EXTERNAL_ID_RE, HCP, AffinityModel

logger = logging.getLogger(__name__)

TRAINING_LOCK = "affinity:training-running"
TRAINING_LOCK_SECONDS = 1800
# PostgreSQL advisory lock key of training runs ("affi"): one run at a time across
# every worker on every machine, and released by the server if the worker dies.
TRAINING_ADVISORY_KEY = 0x61666669


@contextmanager
def training_lock():
    """Yield whether this process may train now (and hold the right until the end).

    On PostgreSQL a session advisory lock: a worker killed mid-training loses
    its connection and so the lock at once (a cache key would block training
    for its whole timeout). Elsewhere (SQLite, one machine) a cache key.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [TRAINING_ADVISORY_KEY])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [TRAINING_ADVISORY_KEY])
        return
    held = cache.add(TRAINING_LOCK, "1", TRAINING_LOCK_SECONDS)
    try:
        yield held
    finally:
        if held:
            cache.delete(TRAINING_LOCK)


def can_view_insights(user) -> bool:
    """Authors, reviewers, admins and the engine may read HCP affinities."""
    return bool(
        user
        and user.is_authenticated
        and has_role(
            user, Role.AUTHOR, Role.MEDICAL, Role.LEGAL, Role.REGULATORY, Role.ADMIN, Role.ENGINE
        )
    )


def can_train(user) -> bool:
    """Only an admin or the engine's service account may start a training run."""
    return bool(user and user.is_authenticated and has_role(user, Role.ADMIN, Role.ENGINE))


def hcp_for_insight(*, actor, external_id: str) -> HCP:
    """The HCP behind an affinity read, after permission and id checks."""
    import re

    if not can_view_insights(actor):
        raise PermissionDenied("Your role may not read HCP affinities.")
    if not re.match(EXTERNAL_ID_RE, external_id or ""):
        raise InvalidInput("Not a valid external id.", field="external_id")
    try:
        return HCP.objects.get(external_id=external_id)
    except HCP.DoesNotExist:
        raise NotFound(f"No HCP {external_id!r}.", field="external_id") from None


def hcp_affinity_get(*, actor, external_id: str) -> dict:
    """Affinity per feature value for one HCP (409 while no model is trained)."""
    from .scoring import hcp_affinity

    hcp = hcp_for_insight(actor=actor, external_id=external_id)
    return hcp_affinity(hcp)


def active_model_get(*, actor) -> AffinityModel:
    """The model in use (409 while none is trained)."""
    if not can_view_insights(actor):
        raise PermissionDenied("Your role may not read the affinity model.")
    model = AffinityModel.objects.filter(is_active=True).defer("artifact").first()
    if model is None:
        raise Conflict(
            "No affinity model has been trained yet: POST /api/v1/affinity/train first.",
            field="model",
        )
    return model


def affinity_training_request(*, actor, evaluate: bool = True) -> str:
    """Queue a training run after commit; answer the Celery task id."""
    from content_modules.audit.services import audit_record

    from ..tasks import train_affinity_task

    if not can_train(actor):
        raise PermissionDenied("Only an admin or the engine service account may start training.")
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="affinity.training_requested",
            object_type="affinity.affinitymodel",
            object_id=task_id,
            data={"task_id": task_id, "evaluate": evaluate},
        )
    # Sent after the audit entry commits, and not from on_commit: with the broker
    # down the caller must hear that nothing was queued (503), not get a 202 for
    # a run that will never happen.
    try:
        train_affinity_task.apply_async(
            kwargs={"actor_id": actor.pk, "evaluate": evaluate}, task_id=task_id
        )
    except OperationalError as exc:
        logger.warning("training request %s not queued: %s", task_id, exc)
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="affinity.training_not_queued",
                object_type="affinity.affinitymodel",
                object_id=task_id,
                data={"task_id": task_id, "reason": str(exc)[:200]},
            )
        raise ServiceUnavailable(
            "The task queue does not answer; training was not started. Try again shortly.",
            field="non_field_errors",
        ) from exc
    return task_id


def run_training(*, actor_id: int | None, evaluate: bool = True, progress=None) -> str | None:
    """Train, store and activate a model (then evaluate it); one run at a time."""
    from django.contrib.auth import get_user_model

    from .evaluation import affinity_model_evaluate
    from .training import affinity_model_train

    with training_lock() as held:
        if not held:
            logger.info("affinity training already running; this request is skipped")
            return None
        actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
        try:
            stored = affinity_model_train(actor=actor, progress=progress)
        except Conflict as exc:
            logger.warning("affinity training not possible: %s", exc.message)
            return None
        if evaluate:
            try:
                affinity_model_evaluate(
                    actor=actor, model_version=stored.model_version, progress=progress
                )
            except Conflict as exc:
                logger.warning("affinity evaluation not possible: %s", exc.message)
        return stored.model_version
