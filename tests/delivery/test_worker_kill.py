"""A Celery worker killed mid-task (SIGKILL) leaves no half-done work; the task completes once.

Late acknowledgement keeps the message in Redis until the task returns; a
worker that dies mid-task never acknowledges it, so Redis hands it to the
next worker after the visibility timeout (5 s here, CELERY_VISIBILITY_TIMEOUT) at its
next restore scan (every 2 s here, CELERY_UNACKED_RESTORE_SECONDS; 100 s by default).
The task, the embedding sweeper, is idempotent: embeddings already written
are complete rows and are skipped when it runs again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from content_modules.affinity.models import VersionEmbedding
from content_modules.affinity.tasks import embed_missing_task
from contentapp.celery import app as celery_app
from tests import celery_support, services
from tests.factories import make_module

from .redis_support import PrivateRedis

pytestmark = [
    pytest.mark.redis,
    pytest.mark.celery_worker,
    pytest.mark.slow,
    pytest.mark.timeout(600),
]
BASE_DIR = Path(__file__).resolve().parents[2]


def start_worker(tmp_path: Path, queue: str, redis_url: str, name: str) -> tuple:
    log_path = tmp_path / f"{name}.log"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="contentapp.settings",
        DATABASE_URL=celery_support.worker_database_url(),
        REDIS_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_VISIBILITY_TIMEOUT="5",
        # Look for unacknowledged messages every 2 s, not kombu's 100 s.
        CELERY_UNACKED_RESTORE_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "contentapp",
        "worker",
        "-P",
        "solo",
        "-n",
        f"{name}@%h",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        queue,
        "--loglevel",
        "INFO",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    return process, log_path


def wait_for(condition, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    text = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}:\n{text}")


def test_worker_killed_mid_task_leaves_no_half_done_work_and_the_task_completes_once(
    transactional_db, tmp_path, author, monkeypatch
):
    services.require_postgres()
    redis = PrivateRedis(tmp_path)
    redis.start()
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    saved = {
        k: celery_app.conf[k]
        for k in ("task_always_eager", "task_default_queue", "broker_url", "result_backend")
    }
    first = second = None
    try:
        # Given many versions that need embedding, and the sweeper queued for one worker
        versions = [make_module(author).pk for _ in range(150)]
        VersionEmbedding.objects.all().delete()  # as if every embedding had been missed
        celery_app.conf.update(
            task_always_eager=False,
            task_default_queue=queue,
            broker_url=redis.url,
            result_backend=redis.url,
        )
        celery_support.reset_broker_connections()
        first, first_log = start_worker(tmp_path, queue, redis.url, "first")
        wait_for(lambda: "ready." in first_log.read_text(), 90, "first worker", [first_log])
        embed_missing_task.apply_async()

        # When the worker is killed while the task runs
        wait_for(
            lambda: (
                "Task content_modules.affinity.tasks.embed_missing_task" in first_log.read_text()
            ),
            60,
            "the task to start",
            [first_log],
        )
        time.sleep(3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        done_at_kill = VersionEmbedding.objects.count()
        assert done_at_kill < len(versions), "the task finished before the kill: make it longer"
        assert "succeeded" not in first_log.read_text()

        # Then every embedding written so far is whole (a complete vector of the model's size)
        for e in VersionEmbedding.objects.all():
            assert e.dim == 384 and len(bytes(e.vector)) == 384 * 4

        # And a new worker gets the unacknowledged message and completes the task
        second, second_log = start_worker(tmp_path, queue, redis.url, "second")
        wait_for(
            lambda: (
                VersionEmbedding.objects.filter(version_id__in=versions).count() == len(versions)
            ),
            180,
            "the redelivered task to finish",
            [first_log, second_log],
        )
        wait_for(lambda: "succeeded" in second_log.read_text(), 30, "success", [second_log])
        # Exactly once: one embedding per version, one successful run, nothing left queued
        assert VersionEmbedding.objects.count() == len(versions)
        assert second_log.read_text().count("succeeded") == 1
    finally:
        celery_app.conf.update(saved)
        celery_support.reset_broker_connections()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        redis.stop()
