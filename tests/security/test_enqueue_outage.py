"""Redis down or frozen: request paths that enqueue work answer at once and fall back to the outbox.

A private redis-server (tests/delivery/redis_support.py) is the app's broker,
result backend and cache, then it is stopped or frozen (SIGSTOP: it keeps
accepting connections and never answers, as a hung or partitioned Redis
does). The training request must answer 202 ``queued: false`` with its row
left for ``train_pending_task``, a module edit must answer 200 with its
embedding left for ``embed_missing_task``. Against a frozen Redis an
unbounded publish never returns, so the request completing at all is the
proof that the broker call is bounded (the suite's per-test timeout fails it
otherwise); the times are measured by hand, not asserted.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest

from content_modules.affinity.models import TrainingRequest, VersionEmbedding
from content_modules.affinity.tasks import embed_missing_task
from content_modules.audit.models import AuditEntry
from contentapp.celery import app as celery_app
from contentapp.celery import enqueue
from tests import celery_support
from tests.delivery.helpers import approved
from tests.delivery.redis_support import PrivateRedis
from tests.factories import api_client

pytestmark = [pytest.mark.redis]


@pytest.fixture
def private_redis(tmp_path, monkeypatch, settings):
    """A private Redis as the app's cache (and, through REDIS_URL, a live worker's broker)."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    monkeypatch.setenv("REDIS_URL", redis.url)
    settings.CACHES = {
        "default": {
            "BACKEND": "contentapp.cache.TolerantRedisCache",
            "LOCATION": redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield redis
    if redis.process is not None:
        redis.process.send_signal(signal.SIGCONT)
    redis.stop()


@contextmanager
def app_on(url: str):
    """Send this process's tasks to ``url`` (broker and result backend), not eagerly,
    as production does with REDIS_URL."""
    keys = ("task_always_eager", "broker_url", "result_backend")
    saved = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(task_always_eager=False, broker_url=url, result_backend=url)
    _reset_celery_connections()
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        _reset_celery_connections()


def _reset_celery_connections() -> None:
    """Drop pooled broker connections and the cached result backend (made from the old URL)."""
    celery_support.reset_broker_connections()
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)


def _edit(author, version) -> dict:
    response = api_client(author).patch(
        f"/api/v1/modules/{version.module_id}",
        {"headline": "Written while the task queue was down"},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def _train(engine) -> dict:
    response = api_client(engine).post("/api/v1/affinity/train")
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.celery_worker
@pytest.mark.slow
def test_with_redis_stopped_training_and_module_edit_answer_and_the_sweeper_embeds_later(
    transactional_db, tmp_path, private_redis, author, engine, embedding_model
):
    # Given an approved module, and a worker on the private Redis
    live = approved(author)
    with celery_support.live_worker(tmp_path) as worker, app_on(private_redis.url):
        # When Redis dies
        private_redis.stop()

        # Then a training request is accepted and kept for the sweeper
        answer = _train(engine)
        assert answer["queued"] is False
        kept = TrainingRequest.objects.get(pk=answer["task_id"])
        assert kept.queued_at is None and kept.finished_at is None
        assert AuditEntry.objects.filter(action="affinity.training_deferred").count() == 1

        # And editing the approved module saves its next draft, not yet embedded
        edited = _edit(author, live)
        assert edited["version"] == live.number + 1 and edited["status"] == "draft"
        assert not VersionEmbedding.objects.filter(version_id=edited["version_id"]).exists()

        # When Redis is back and celery beat fires the embedding sweeper
        private_redis.start()
        assert enqueue(embed_missing_task) is True

        # Then the worker embeds the version edited during the outage
        worker.wait_for(
            lambda: VersionEmbedding.objects.filter(version_id=edited["version_id"]).exists(),
            timeout=180,
        )


def test_with_redis_frozen_training_and_module_edit_still_answer(
    transactional_db, private_redis, author, engine
):
    # Given an approved module, and the app sending its tasks to the private Redis
    live = approved(author)
    with app_on(private_redis.url):
        # When Redis freezes: connections are accepted, nothing is ever answered
        private_redis.process.send_signal(signal.SIGSTOP)

        # Then a training request answers 202, not queued, and is kept for the sweeper
        answer = _train(engine)
        assert answer["queued"] is False
        assert TrainingRequest.objects.get(pk=answer["task_id"]).queued_at is None

        # And a module edit answers and is saved
        edited = _edit(author, live)
        assert edited["version"] == live.number + 1
        assert not VersionEmbedding.objects.filter(version_id=edited["version_id"]).exists()


def test_with_redis_up_the_training_request_is_queued(
    transactional_db, private_redis, engine, settings
):
    # Given the app sending its tasks to a live private Redis (no worker reads the queue)
    with app_on(private_redis.url):
        # When the engine asks for training
        answer = _train(engine)

    # Then the broker took the task, so the request is not left to the sweeper
    assert answer["queued"] is True
    assert TrainingRequest.objects.get(pk=answer["task_id"]).queued_at is not None
