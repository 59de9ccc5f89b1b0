"""Redis stopped: delivery, content and ingestion keep answering; deferred work completes later.

Runs a private redis-server (see redis_support.py) and a real Celery worker
(tests/celery_support.py) on it and on the PostgreSQL test database.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.utils import timezone

from content_modules.affinity.models import (
    EngagementEvent,
    TrainingRequest,
    VersionEmbedding,
)
from content_modules.affinity.tasks import embed_missing_task, train_pending_task
from tests import celery_support, services
from tests.affinity.test_learning import build_world
from tests.affinity.worlds import assert_answered_through_the_gate
from tests.factories import PASSWORD, api_client, make_user

from .helpers import approved
from .redis_support import PrivateRedis

pytestmark = [pytest.mark.redis, pytest.mark.celery_worker, pytest.mark.slow]


@pytest.fixture
def private_redis(tmp_path, monkeypatch, settings):
    """A private Redis as the app's cache and broker, stopped after the test."""
    services.require_postgres()
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
    redis.stop()


def _module_body(n: int) -> dict:
    return {
        "title": f"Written while Redis was down {n}",
        "headline": "Fewer events",
        "body": "In the pivotal trial, fewer events were seen.",
        "key_message": "Fewer events.",
        "call_to_action": "Read",
        "brand": "cardiozen",
        "market": "UK",
        "channels": ["email"],
        "tags": {
            "message": "efficacy",
            "theme": ["outcomes"],
            "tonality": "clinical",
            "format": "text",
        },
        "expires_on": str(timezone.localdate().replace(year=timezone.localdate().year + 1)),
    }


def test_with_redis_stopped_endpoints_answer_and_deferred_work_runs_when_it_is_back(
    transactional_db, tmp_path, private_redis, author, embedding_model
):
    engine = make_user("engine")
    live = approved(author)
    # Approved modules with a history to train on
    library, _ = build_world(author, n_hcps=30, deliveries=12)
    approved_modules = {live.module_id} | {v.module_id for v in library}
    with celery_support.live_worker(tmp_path) as worker:
        # Given Redis dies
        private_redis.stop()
        engine_client = api_client(engine)

        # Then recommendations and approved content still answer
        response = engine_client.post(
            "/api/v1/recommendations", {"hcp": "HCP-9", "channel": "email"}, format="json"
        )
        assert response.status_code == 200, response.content
        shown = {i["module"] for i in response.json()["items"]}
        assert shown and shown <= approved_modules
        assert engine_client.get("/api/v1/content").json()["count"] == len(approved_modules)

        # And events are accepted and stored in PostgreSQL
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "hcp": "HCP-9",
                "module": live.module_id,
                "type": "opened",
                "occurred_at": timezone.now().isoformat(),
                "channel": "email",
            }
        ]
        response = engine_client.post("/api/v1/events", {"events": events}, format="json")
        assert response.status_code == 200 and response.json()["accepted"] == 1
        assert EngagementEvent.objects.filter(event_id=events[0]["event_id"]).exists()

        # And logging in (throttled through the cache) answers, never a 500
        response = api_client(None).post(
            "/api/v1/auth/token", {"username": engine.username, "password": PASSWORD}, format="json"
        )
        assert response.status_code == 200 and response.json()["token"]
        assert cache.get("anything", "miss") == "miss"

        # And an author can still write a module; its embedding cannot be queued now
        response = api_client(author).post("/api/v1/modules", _module_body(1), format="json")
        assert response.status_code == 201, response.content
        written = response.json()["version_id"]
        assert not VersionEmbedding.objects.filter(version_id=written).exists()

        # And a training request is accepted and kept, though it cannot be queued now
        response = engine_client.post("/api/v1/affinity/train")
        assert response.status_code == 202 and response.json()["queued"] is False
        training_request = response.json()["task_id"]

        # When Redis is back and the periodic sweeper fires (as celery beat does)
        private_redis.start()
        celery_support.reset_broker_connections()
        embed_missing_task.apply_async()
        train_pending_task.apply_async()

        # Then the worker embeds what was missed, nothing lost
        worker.wait_for(
            lambda: VersionEmbedding.objects.filter(version_id__in=[written, live.pk]).count() == 2,
            timeout=180,
        )
        # And trains the model that was asked for while Redis was down
        answered = worker.wait_for(
            lambda: TrainingRequest.objects.filter(
                pk=training_request, finished_at__isnull=False
            ).first(),
            timeout=180,
        )
        assert_answered_through_the_gate(answered)
