"""Actions behind the affinity API and pages: reading affinities, training, the model."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils.timezone import now

from content_modules.accounts.roles import Role, has_role
from content_modules.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from contentapp.celery import enqueue

from ..models import EXTERNAL_ID_RE, HCP, AffinityModel, TrainingRequest

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


@dataclass
class TrainingQueued:
    task_id: str
    queued: bool  # False: the broker did not answer; the sweeper runs it when it is back


def affinity_training_request(*, actor, evaluate: bool = True) -> TrainingQueued:
    """Record a training request, then hand it to the task queue.

    The request row commits first (the outbox): with the broker down the
    answer is still 202, ``queued`` is false, and ``tasks.train_pending_task``
    (celery beat, every TRAINING_SWEEP_INTERVAL_SECONDS) runs it once Redis
    is back. Nothing is lost and the caller is told which case it is.
    """
    from content_modules.audit.services import audit_record

    from ..tasks import train_affinity_task

    if not can_train(actor):
        raise PermissionDenied("Only an admin or the engine service account may start training.")
    with transaction.atomic():
        # Marked queued before it is sent: a worker that takes it at once and finds
        # another run going hands it back to the sweeper (queued_at cleared), and
        # marking it only after sending could overwrite that.
        req = TrainingRequest.objects.create(requested_by=actor, evaluate=evaluate, queued_at=now())
        task_id = str(req.pk)
        audit_record(
            actor=actor,
            action="affinity.training_requested",
            object_type="affinity.affinitymodel",
            object_id=task_id,
            data={"task_id": task_id, "evaluate": evaluate},
        )
    kwargs = {"actor_id": actor.pk, "evaluate": evaluate, "request_id": task_id}
    if not enqueue(train_affinity_task, kwargs=kwargs, task_id=task_id):
        with transaction.atomic():
            TrainingRequest.objects.filter(pk=req.pk).update(queued_at=None)
            audit_record(
                actor=actor,
                action="affinity.training_deferred",
                object_type="affinity.affinitymodel",
                object_id=task_id,
                data={"task_id": task_id, "reason": "the task queue did not answer"},
            )
        return TrainingQueued(task_id, queued=False)
    return TrainingQueued(task_id, queued=True)


def pending_training_requests():
    """Requests no run has answered that no worker will: never queued (the broker was
    down), or queued or started longer ago than a run may last (the queued task was
    lost with a restarted Redis, or its worker died and it was not redelivered)."""
    stale = now() - timedelta(seconds=TRAINING_LOCK_SECONDS)
    return TrainingRequest.objects.filter(finished_at__isnull=True).filter(
        Q(queued_at__isnull=True)
        | Q(started_at__isnull=True, queued_at__lt=stale)
        | Q(started_at__lt=stale)
    )


def run_pending_training(progress=None) -> str | None:
    """The sweeper: one run answers every pending request (a run trains on all the data)."""
    pending = list(pending_training_requests().order_by("requested_at"))
    if not pending:
        return None
    last = pending[-1]
    return run_training(
        actor_id=last.requested_by_id,
        evaluate=any(r.evaluate for r in pending),
        progress=progress,
        request_id=last.pk,
    )


def run_training(
    *,
    actor_id: int | None,
    evaluate: bool = True,
    progress=None,
    request_id: str | uuid.UUID | None = None,
) -> str | None:
    """Train, store and activate a model (then evaluate it); one run at a time.

    With ``request_id`` the run answers that request and every other one made
    before it started; a request already answered (a redelivered task) does
    not train again.
    """
    from django.contrib.auth import get_user_model

    from .evaluation import affinity_model_evaluate
    from .training import affinity_model_train

    if request_id is not None:
        done = TrainingRequest.objects.filter(pk=request_id, finished_at__isnull=False).first()
        if done is not None:
            logger.info("training request %s was already answered", request_id)
            return done.model_version or None
    with training_lock() as held:
        if not held:
            logger.info("affinity training already running; the sweeper retries this request")
            if request_id is not None:  # back to the sweeper, which runs it after this run
                TrainingRequest.objects.filter(pk=request_id, finished_at__isnull=True).update(
                    queued_at=None
                )
            return None
        started = now()
        if request_id is not None:
            TrainingRequest.objects.filter(pk=request_id).update(started_at=started)
        answered = TrainingRequest.objects.filter(
            finished_at__isnull=True, requested_at__lte=started
        )
        actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
        try:
            stored = affinity_model_train(actor=actor, progress=progress)
        except Conflict as exc:
            logger.warning("affinity training not possible: %s", exc.message)
            answered.update(finished_at=now(), outcome=f"not possible: {exc.message}"[:200])
            return None
        if evaluate:
            try:
                affinity_model_evaluate(
                    actor=actor, model_version=stored.model_version, progress=progress
                )
            except Conflict as exc:
                logger.warning("affinity evaluation not possible: %s", exc.message)
        answered.update(finished_at=now(), model_version=stored.model_version, outcome="trained")
        return stored.model_version
