"""Celery tasks of the affinity app: thin, idempotent calls into the domain code.

Embedding tasks load the sentence-transformers model once per worker process
(``embeddings.get_model`` caches it), tolerate versions that are gone, and are
safe to run twice: ``embed_versions`` skips up-to-date embeddings.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from . import embeddings

logger = logging.getLogger(__name__)

# PostgreSQL advisory lock key of the embedding sweep ("embd").
EMBED_SWEEP_ADVISORY_KEY = 0x656D6264

_EMBED_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(
    name="content_modules.affinity.tasks.embed_version_task",
    soft_time_limit=120,
    time_limit=180,
    **_EMBED_OPTIONS,
)
def embed_version_task(version_id: int) -> int:
    """Embed one version (no-op when it is gone or already up to date)."""
    return embeddings.embed_versions([version_id])


@shared_task(
    name="content_modules.affinity.tasks.embed_missing_task",
    soft_time_limit=3300,
    time_limit=3600,
    **_EMBED_OPTIONS,
)
def embed_missing_task() -> int:
    """Sweeper: embed every version that should have an up-to-date embedding and lacks one.

    One sweep at a time: a sweep can outlast the broker's visibility timeout
    (settings: CELERY_VISIBILITY_TIMEOUT), after which Redis hands the same
    message to another worker while the first still runs; that copy skips.
    """
    from .training_runs import single_run

    with single_run(EMBED_SWEEP_ADVISORY_KEY, "affinity:embed-sweep-running", 3600) as held:
        if not held:
            logger.info("an embedding sweep is already running; this one skips")
            return 0
        return embeddings.embed_versions(embeddings.versions_needing_embedding())


def enqueue_embedding(version_id: int) -> bool:
    """Queue the embedding of one version; never raises (embed_missing_task catches up)."""
    from contentapp.celery import enqueue

    return enqueue(embed_version_task, args=(version_id,))


@shared_task(
    name="content_modules.affinity.tasks.train_affinity_task",
    acks_late=True,
    max_retries=0,
    soft_time_limit=1700,
    time_limit=1800,
)
def train_affinity_task(
    actor_id: int | None = None, evaluate: bool = True, request_id: str | None = None
) -> str | None:
    """Train, gate and store a new affinity model (one run at a time); answer its version.

    Idempotent per request: redelivered for a request a run already answered,
    it answers that run's version without training again.
    """
    from .training_runs import run_training

    return run_training(actor_id=actor_id, evaluate=evaluate, request_id=request_id)


@shared_task(
    name="content_modules.affinity.tasks.train_pending_task",
    acks_late=True,
    max_retries=0,
    soft_time_limit=1700,
    time_limit=1800,
)
def train_pending_task() -> str | None:
    """Sweeper: run training requests the broker never took (it was down) or lost."""
    from .training_runs import run_pending_training

    return run_pending_training()


@shared_task(
    name="content_modules.affinity.tasks.train_scheduled_task",
    acks_late=True,
    max_retries=0,
    soft_time_limit=1700,
    time_limit=1800,
)
def train_scheduled_task() -> str | None:
    """Scheduled training (celery beat, AFFINITY_TRAIN_SCHEDULE): a request, through the gate."""
    from .training_runs import run_scheduled_training

    return run_scheduled_training()
