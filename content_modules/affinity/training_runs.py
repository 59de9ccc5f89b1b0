"""Training runs: fit, gate, store and activate affinity models; one run at a time.

The orchestration around the pure ``learning`` package: the training lock,
the champion/challenger gate's verdict stored with each model, activation
(gated, or forced by an admin with a reason, audited), and the training
requests (the outbox behind ``POST /api/v1/affinity/train``, the page's
"train now" and the scheduled run) answered in the same transaction that
stores and activates the model, so a worker killed at any point either left
nothing or left the answered request: a redelivered task never trains twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from content_modules.audit.actions import AuditAction
from content_modules.errors import Conflict, InvalidInput, NotFound

from .learning import gate
from .learning.evaluation import evaluate_dataset, holdout_split
from .learning.features import Params
from .learning.training import fit, load_dataset
from .models import AffinityModel, ModelStatus, TrainingRequest

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

TRAINING_LOCK = "affinity:training-running"
TRAINING_LOCK_SECONDS = 1800
# PostgreSQL advisory lock key of training runs ("affi"): one run at a time across
# every worker on every machine, and released by the server if the worker dies.
TRAINING_ADVISORY_KEY = 0x61666669


def training_lock():
    """Yield whether this process may train now (and hold the right until the end).

    On PostgreSQL a session advisory lock: a worker killed mid-training loses
    its connection and so the lock at once (a cache key would block training
    for its whole timeout). Elsewhere (SQLite, one machine) a cache key.
    """
    return single_run(TRAINING_ADVISORY_KEY, TRAINING_LOCK, TRAINING_LOCK_SECONDS)


@contextmanager
def single_run(advisory_key: int, cache_key: str, seconds: int):
    """Yield whether this process holds the one right to run a job (released at the end)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [advisory_key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [advisory_key])
        return
    held = cache.add(cache_key, "1", seconds)
    try:
        yield held
    finally:
        if held:
            cache.delete(cache_key)


def next_model_version(now=None) -> str:
    """'<UTC ISO time>#<n>' where n counts every model trained so far."""
    now = now or timezone.now()
    n = AffinityModel.objects.count() + 1
    return f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}#{n}"


def _activate(*, actor, model: AffinityModel, audit_data: dict) -> list[AffinityModel]:
    """Swap the active model inside the caller's transaction; answer the ones replaced."""
    from content_modules.audit.services import audit_record

    previous = list(
        AffinityModel.objects.select_for_update().filter(is_active=True).exclude(pk=model.pk)
    )
    # Deactivate first: the one-active constraint is checked per statement.
    AffinityModel.objects.filter(pk__in=[m.pk for m in previous]).update(is_active=False)
    AffinityModel.objects.filter(pk=model.pk).update(is_active=True)
    audit_record(
        actor=actor,
        action=AuditAction.AFFINITY_MODEL_ACTIVATED,
        obj=model,
        data={
            "model_version": model.model_version,
            "previous": [m.model_version for m in previous],
            **audit_data,
        },
    )
    model.is_active = True
    return previous


def affinity_model_activate(*, actor, model_id, reason: str = "") -> AffinityModel:
    """Make one stored model the active one, in a single transaction.

    A model the gate passed (or a legacy, ungated one) is activated as it is,
    e.g. to roll back. A model the gate rejected needs a reason: it becomes
    ``forced``, and the reason, the actor and the gate's verdict are audited.
    """
    from content_modules.audit.services import audit_record

    reason = (reason or "").strip()
    with transaction.atomic():
        try:
            model = AffinityModel.objects.select_for_update().defer("artifact").get(pk=model_id)
        except (AffinityModel.DoesNotExist, ValueError, TypeError) as exc:
            raise NotFound("No such affinity model.", field="model") from exc
        if model.status in (ModelStatus.REJECTED, ModelStatus.FORCED):
            if not reason:
                raise InvalidInput(
                    f"Model {model.model_version} was rejected by the gate "
                    f"({model.reason}); activating it needs a reason.",
                    field="reason",
                )
            AffinityModel.objects.filter(pk=model.pk).update(
                status=ModelStatus.FORCED, override_reason=reason[:500], override_by=actor
            )
            model.status, model.override_reason = ModelStatus.FORCED, reason[:500]
            audit_record(
                actor=actor,
                action=AuditAction.AFFINITY_MODEL_FORCE_ACTIVATED,
                obj=model,
                data={
                    "model_version": model.model_version,
                    "reason": reason[:500],
                    "gate_reason": model.reason,
                },
            )
        _activate(actor=actor, model=model, audit_data={"reason": reason[:500]} if reason else {})
    return model


def _champion_params(champion: AffinityModel | None) -> tuple[Params | None, str]:
    if champion is None:
        return None, ""
    try:
        return Params.stored(champion.params), champion.model_version
    except TypeError:
        # Stored by code with other parameters: refit with today's defaults would not
        # be that model; compare with the closest recipe this code knows.
        logger.warning("active model %s has unknown params; gate uses defaults", champion)
        return Params(), champion.model_version


def affinity_model_train(
    *,
    actor=None,
    params: Params | None = None,
    progress: Progress | None = None,
    activate: bool = True,
    evaluate: bool = False,
    answer: Callable[[AffinityModel], None] | None = None,
) -> AffinityModel:
    """Train on all events, gate the model against popularity and the active model, store it.

    The model is activated (with ``activate``) only when the gate passes it;
    otherwise it is stored as ``rejected`` with the gate's reason. ``answer``
    runs inside the transaction that stores (and activates) the model.
    """
    from content_modules.audit.services import audit_record

    from .embeddings import model_info

    params = params or Params()
    say = progress or (lambda _msg: None)
    ds = load_dataset(params, progress)
    champion = AffinityModel.objects.filter(is_active=True).defer("artifact").first()
    champion_params, champion_version = _champion_params(champion)
    trained = fit(ds, params, progress)  # raises Conflict when there is nothing to learn from
    # One holdout for the gate and the evaluation: the same split, one challenger fit.
    split = holdout_split(ds, params)
    decision = gate.challenge(
        ds,
        params,
        champion_params=champion_params,
        champion_version=champion_version,
        progress=progress,
        split=split,
    )
    metrics = dict(trained.metrics)
    off_policy = _off_policy_comparison(ds, trained, champion)
    passed, reason = decision.passed, decision.reason
    if off_policy is not None:
        metrics["off_policy"] = off_policy
        if passed and off_policy["worse"]:
            passed = False
            reason = off_policy["reason"]
    metrics["gate"] = {"passed": passed, "reason": reason, **decision.figures}
    if evaluate:
        try:
            metrics["evaluation"] = evaluate_dataset(ds, params, progress, split=split)
        except Conflict as exc:
            logger.warning("affinity evaluation not possible: %s", exc.message)
    del split
    name, sha = model_info()
    now = timezone.now()
    say("storing the model")
    with transaction.atomic():
        stored = AffinityModel.objects.create(
            model_version=next_model_version(now),
            trained_at=now,
            n_events=trained.n_events,
            n_hcps=trained.n_hcps,
            params=params.as_dict(),
            metrics=metrics,
            embedding_model=name,
            embedding_model_sha256=sha,
            artifact=trained.to_bytes(),
            status=ModelStatus.PASSED if passed else ModelStatus.REJECTED,
            reason=reason[:1000],
        )
        if passed and activate:
            _activate(actor=actor, model=stored, audit_data={"gate": reason[:1000]})
        elif not passed:
            audit_record(
                actor=actor,
                action=AuditAction.AFFINITY_MODEL_REJECTED,
                obj=stored,
                data={
                    "model_version": stored.model_version,
                    "reason": reason[:1000],
                    "active": champion_version or None,
                },
            )
        if answer is not None:
            answer(stored)
    _fit_engagement(ds, stored, progress)
    return stored


def _off_policy_comparison(ds, trained, champion: AffinityModel | None) -> dict | None:
    """Doubly robust click rates of the new model and the active one on the logged
    recommendations (``learning.ope``), and whether the new one is clearly worse.

    It decides only with enough logged exploration: at least
    ``OPE_GATE_MIN_DECISIONS`` logged decisions and an effective sample of a
    tenth of that; then a challenger whose interval lies wholly below the active
    model's estimate is rejected. Otherwise the figures are kept and shown only.
    """
    from .learning.evaluation import logged_propensities, off_policy_estimates
    from .learning.features import compute_history
    from .learning.training import TrainedModel, event_pairs

    logged = logged_propensities()
    if not logged:
        return None
    t = ds.events["t"]
    history = compute_history(
        event_pairs(ds),
        ds.items,
        ds.hcps,
        ds.vocab,
        float(t.max()) + 1.0 if len(t) else 0.0,
        trained.params.half_life_days,
        trained.params.taste_shrink,
    )
    mine = off_policy_estimates(trained, ds, history, logged)
    theirs = None
    if champion is not None:
        try:
            blob = AffinityModel.objects.values_list("artifact", flat=True).get(pk=champion.pk)
            active = TrainedModel.from_bytes(bytes(blob))
            theirs = off_policy_estimates(active, ds, history, logged)
        except Exception:  # a model stored by other code: no comparison, say so
            logger.warning("cannot score the active model %s off-policy", champion)
    reason = off_policy_verdict(mine, theirs, settings.OPE_GATE_MIN_DECISIONS)
    return {"challenger": mine, "active": theirs, "worse": bool(reason), "reason": reason}


def off_policy_verdict(mine: dict | None, theirs: dict | None, minimum: int) -> str:
    """Why the challenger is clearly worse off-policy, or "" when it is not (or cannot tell).

    Decides only with ``minimum`` logged decisions and an effective sample of a
    tenth of that, and only when the challenger's whole 95% interval lies below
    the active model's estimate.
    """
    if not (mine and theirs and mine.get("dr_ci95") and theirs.get("dr") is not None):
        return ""
    if mine["n"] < minimum or mine.get("effective_n", 0) < minimum / 10:
        return ""
    if mine["dr_ci95"][1] >= theirs["dr"]:
        return ""
    return (
        f"off-policy: estimated click rate {mine['dr']:.4f} (95% interval "
        f"{mine['dr_ci95'][0]:.4f}-{mine['dr_ci95'][1]:.4f}) on {mine['n']} logged "
        f"decisions is below the active model's {theirs['dr']:.4f}"
    )


def _fit_engagement(ds, stored: AffinityModel, progress: Progress | None) -> None:
    """The engagement model and microsegments, from the same events (engagement.training).

    A failure there leaves the affinity model standing (it is stored and gated
    already); it is logged, and the next run fits both again.
    """
    from content_modules.engagement.training import engagement_model_train

    try:
        engagement_model_train(ds, affinity_model=stored, progress=progress)
    except Exception:
        logger.exception("fitting the engagement model failed; the affinity model stands")


def affinity_model_evaluate(*, actor=None, model_version: str | None = None, progress=None) -> dict:
    """Evaluate a model's configuration on held-out events; store the results with it.

    By default the active model, or the latest trained when none is active
    (the gate rejected it, and its evaluation says by how much).
    """
    qs = AffinityModel.objects.defer("artifact")
    stored = (
        qs.filter(model_version=model_version).first()
        if model_version
        else (qs.filter(is_active=True).first() or qs.order_by("-trained_at").first())
    )
    if stored is None:
        raise Conflict(
            "No affinity model has been trained yet: run train_affinity first.", field="model"
        )
    params = Params.stored(stored.params)
    ds = load_dataset(params, progress)
    results = evaluate_dataset(ds, params, progress)
    with transaction.atomic():
        locked = AffinityModel.objects.select_for_update().defer("artifact").get(pk=stored.pk)
        metrics = dict(locked.metrics or {})
        metrics["evaluation"] = results
        AffinityModel.objects.filter(pk=locked.pk).update(metrics=metrics)
    results["model_version"] = stored.model_version
    return results


# --- training requests: the outbox and the runs that answer it ---------------------------


def pending_training_requests(*, no_run_going: bool = False):
    """Requests no run has answered that no worker will.

    Never queued (the broker was down), or queued or started longer ago than a
    run may last (the queued task was lost with a restarted Redis, or its
    worker died and it was not redelivered). With ``no_run_going`` (the caller
    holds the training lock, so no run is going anywhere) a request that was
    started is orphaned at once: its worker died mid-run.
    """
    stale = timezone.now() - timedelta(seconds=TRAINING_LOCK_SECONDS)
    waiting = (
        Q(queued_at__isnull=True)
        | Q(started_at__isnull=True, queued_at__lt=stale)
        | Q(started_at__lt=stale)
    )
    if no_run_going:
        waiting |= Q(started_at__isnull=False)
    return TrainingRequest.objects.filter(finished_at__isnull=True).filter(waiting)


def run_pending_training(progress=None) -> str | None:
    """The sweeper: one run answers every pending request (a run trains on all the data)."""
    with training_lock() as held:
        if not held:
            return None
        # On PostgreSQL the lock dies with its holder's connection, so holding it means
        # no run is going: a started, unanswered request lost its worker. (The cache
        # lock of a killed process outlives it, so there only the staleness applies.)
        pending = list(
            pending_training_requests(no_run_going=connection.vendor == "postgresql").order_by(
                "requested_at"
            )
        )
        if not pending:
            return None
        last = pending[-1]
        return _run_locked(
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
    """Train, gate and store a model (activated when it passes); one run at a time.

    With ``request_id`` the run answers that request and every other one made
    before it started; a request already answered (a redelivered task) does
    not train again. Answers the stored model's version (``None`` when no run
    happened or nothing could be trained).
    """
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
        return _run_locked(
            actor_id=actor_id, evaluate=evaluate, progress=progress, request_id=request_id
        )


def _run_locked(*, actor_id, evaluate, progress, request_id) -> str | None:
    from django.contrib.auth import get_user_model

    if request_id is not None:
        # Checked again under the lock: a run that just finished may have answered it.
        done = TrainingRequest.objects.filter(pk=request_id, finished_at__isnull=False).first()
        if done is not None:
            return done.model_version or None
    started = timezone.now()
    if request_id is not None:
        TrainingRequest.objects.filter(pk=request_id).update(started_at=started)
    answered = TrainingRequest.objects.filter(finished_at__isnull=True, requested_at__lte=started)
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None

    def answer(stored: AffinityModel) -> None:
        outcome = (
            "trained and activated" if stored.is_active else f"{stored.status}: {stored.reason}"
        )
        answered.update(
            finished_at=timezone.now(), model_version=stored.model_version, outcome=outcome[:200]
        )

    try:
        stored = affinity_model_train(
            actor=actor, progress=progress, evaluate=evaluate, answer=answer
        )
    except Conflict as exc:
        logger.warning("affinity training not possible: %s", exc.message)
        answered.update(finished_at=timezone.now(), outcome=f"not possible: {exc.message}"[:200])
        return None
    return stored.model_version


def run_scheduled_training(progress=None) -> str | None:
    """The scheduled run (celery beat): a request of its own, answered through the same gate."""
    request = TrainingRequest.objects.create(requested_by=None, queued_at=timezone.now())
    return run_training(actor_id=None, evaluate=True, progress=progress, request_id=request.pk)
