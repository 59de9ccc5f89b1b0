"""Actions behind the affinity API and pages: reading affinities, asking for training, the model.

Permission checks live here; the training runs themselves (lock, gate,
activation) are in ``training_runs``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils.timezone import now

from content_modules.accounts.roles import Role, has_role
from content_modules.audit.actions import AuditAction
from content_modules.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from contentapp.celery import enqueue

from .models import EXTERNAL_ID_RE, HCP, AffinityModel, ModelStatus, TrainingRequest

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 30


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
    from .learning.scoring import hcp_affinity

    hcp = hcp_for_insight(actor=actor, external_id=external_id)
    return hcp_affinity(hcp)


def active_model_get(*, actor) -> AffinityModel:
    """The model in use (409 while none is active, saying why when the gate rejected one)."""
    if not can_view_insights(actor):
        raise PermissionDenied("Your role may not read the affinity model.")
    model = AffinityModel.objects.filter(is_active=True).defer("artifact").first()
    if model is None:
        rejected = (
            AffinityModel.objects.filter(status=ModelStatus.REJECTED)
            .defer("artifact")
            .order_by("-trained_at")
            .first()
        )
        if rejected is not None:
            raise Conflict(
                f"No affinity model is active: the gate rejected {rejected.model_version} "
                f"({rejected.reason}).",
                field="model",
            )
        raise Conflict(
            "No affinity model has been trained yet: POST /api/v1/affinity/train first.",
            field="model",
        )
    return model


def model_history(*, actor, limit: int = HISTORY_LENGTH) -> list[AffinityModel]:
    """The latest trained models, newest first, with the gate's verdict on each."""
    if not can_view_insights(actor):
        raise PermissionDenied("Your role may not read the affinity model.")
    return list(
        AffinityModel.objects.defer("artifact")
        .select_related("override_by")
        .order_by("-trained_at")[:limit]
    )


def can_force_activate(user) -> bool:
    """Only an admin may activate a model the gate rejected."""
    return bool(user and user.is_authenticated and has_role(user, Role.ADMIN))


def model_activate(*, actor, model_id, reason: str) -> AffinityModel:
    """An admin activates a stored model; a rejected one needs a reason (audited, ``forced``)."""
    from .training_runs import affinity_model_activate

    if not can_force_activate(actor):
        raise PermissionDenied("Only an admin may activate an affinity model.")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidInput("A reason is text of at most 500 characters.", field="reason")
    try:
        reason.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("The reason is not valid text.", field="reason") from None
    if "\x00" in reason:
        raise InvalidInput("The reason may not contain NUL characters.", field="reason")
    return affinity_model_activate(actor=actor, model_id=model_id, reason=reason)


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
    task_id = affinity_training_record(actor=actor, evaluate=evaluate)
    return affinity_training_dispatch(actor=actor, task_id=task_id, evaluate=evaluate)


def affinity_training_record(*, actor, evaluate: bool = True) -> str:
    """The first half of a training request: its row and audit entry; answers the task id.

    Callers that record it inside a transaction of their own (an idempotent
    call) dispatch it with ``affinity_training_dispatch`` once that commits.
    """
    from content_modules.audit.services import audit_record

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
            action=AuditAction.AFFINITY_TRAINING_REQUESTED,
            object_type="affinity.affinitymodel",
            object_id=task_id,
            data={"task_id": task_id, "evaluate": evaluate},
        )
    return task_id


def affinity_training_dispatch(*, actor, task_id: str, evaluate: bool = True) -> TrainingQueued:
    """The second half: send the recorded request's task (after its row committed)."""
    from content_modules.audit.services import audit_record

    if not _send_training_task(request_id=task_id, actor_id=actor.pk, evaluate=evaluate):
        with transaction.atomic():
            TrainingRequest.objects.filter(pk=task_id).update(queued_at=None)
            audit_record(
                actor=actor,
                action=AuditAction.AFFINITY_TRAINING_DEFERRED,
                object_type="affinity.affinitymodel",
                object_id=task_id,
                data={"task_id": task_id, "reason": "the task queue did not answer"},
            )
        return TrainingQueued(task_id, queued=False)
    return TrainingQueued(task_id, queued=True)


def _send_training_task(*, request_id: str, actor_id: int, evaluate: bool) -> bool:
    """Hand one training request to the broker, bounded; False when it did not answer."""
    from .tasks import train_affinity_task

    kwargs = {"actor_id": actor_id, "evaluate": evaluate, "request_id": request_id}
    return enqueue(train_affinity_task, kwargs=kwargs, task_id=request_id)
