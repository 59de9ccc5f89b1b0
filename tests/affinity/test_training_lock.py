"""One training run at a time, and a dead worker never blocks the next one.

On PostgreSQL the lock is a session advisory lock: another worker's run
(its own connection) makes this one skip; when that worker dies, its
connection goes and the lock with it.
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db import connection

from content_modules.affinity import training_runs
from content_modules.affinity.models import AffinityModel
from tests.services import other_connection, require_postgres

pytestmark = pytest.mark.django_db


def _hold_lock_elsewhere():
    if connection.vendor == "postgresql":
        other = other_connection()
        other.execute("SELECT pg_advisory_lock(%s)", [training_runs.TRAINING_ADVISORY_KEY])
        return other
    assert cache.add(training_runs.TRAINING_LOCK, "1", 60)
    return None


def test_a_run_is_skipped_while_another_worker_trains():
    # Given another worker in the middle of a training run
    other = _hold_lock_elsewhere()
    try:
        # When a second run starts here
        result = training_runs.run_training(actor_id=None, evaluate=False)
        # Then it does nothing and says so
        assert result is None
        assert not AffinityModel.objects.exists()
        with training_runs.training_lock() as held:
            assert held is False
    finally:
        if other is not None:
            other.close()
        cache.delete(training_runs.TRAINING_LOCK)


def test_a_killed_workers_lock_goes_with_its_connection():
    require_postgres()
    # Given a worker that took the training lock and died without releasing it
    other = _hold_lock_elsewhere()
    with training_runs.training_lock() as held:
        assert held is False
    other.close()  # what the server sees when the process is killed
    # Then the next run may train as soon as the server has ended that session
    # (milliseconds; a cache key would have blocked training for half an hour)
    deadline = time.monotonic() + 10
    while True:
        with training_runs.training_lock() as held:
            if held or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert held is True
    # And it released the lock when done
    again = other_connection()
    try:
        got = again.execute(
            "SELECT pg_try_advisory_lock(%s)", [training_runs.TRAINING_ADVISORY_KEY]
        ).fetchone()[0]
        assert got is True
    finally:
        again.close()


def test_a_request_that_finds_a_run_going_goes_back_to_the_sweeper(author, engine):
    from django.utils import timezone

    from content_modules.affinity.models import TrainingRequest
    from content_modules.affinity.tasks import train_affinity_task, train_pending_task
    from tests.affinity.test_learning import build_world
    from tests.affinity.worlds import assert_answered_through_the_gate

    build_world(author, n_hcps=30, deliveries=12)
    request = TrainingRequest.objects.create(requested_by=engine, queued_at=timezone.now())
    # Given another worker in the middle of a training run
    other = _hold_lock_elsewhere()
    try:
        # When a worker takes the request meanwhile
        kwargs = {"actor_id": engine.pk, "request_id": str(request.pk)}
        assert train_affinity_task.apply(kwargs=kwargs).get() is None
    finally:
        if other is not None:
            other.close()
        cache.delete(training_runs.TRAINING_LOCK)
    # Then the request waits for the sweeper rather than for the half-hour staleness
    assert list(training_runs.pending_training_requests()) == [request]
    # And the sweeper runs it once the lock is free
    deadline = time.monotonic() + 10
    while (version := train_pending_task.apply().get()) is None:
        assert time.monotonic() < deadline, "the lock was not freed"
        time.sleep(0.05)
    request.refresh_from_db()
    assert request.model_version == version
    assert_answered_through_the_gate(request)


def test_a_request_whose_worker_died_mid_run_is_trained_by_the_next_sweep(author, engine):
    """On PostgreSQL the free lock proves no run is going: no half-hour staleness to wait."""
    from datetime import timedelta

    from django.utils import timezone

    from content_modules.affinity.models import TrainingRequest
    from content_modules.affinity.tasks import train_pending_task
    from tests.affinity.test_learning import build_world
    from tests.affinity.worlds import assert_answered_through_the_gate

    require_postgres()
    build_world(author, n_hcps=30, deliveries=12)
    # Given a request a worker started a minute ago and died in (its lock went with it)
    started = timezone.now() - timedelta(minutes=1)
    request = TrainingRequest.objects.create(
        requested_by=engine, queued_at=started, started_at=started
    )
    # When the sweeper fires (celery beat, every minute)
    version = train_pending_task.apply().get()
    # Then it trains and answers the request now
    request.refresh_from_db()
    assert version is not None and request.model_version == version
    assert_answered_through_the_gate(request)
    assert AffinityModel.objects.count() == 1
