"""A real Celery worker for integration tests, as a subprocess on Redis.

Use the ``live_celery_worker`` fixture (defined in ``tests/conftest.py``) in a
test marked ``@pytest.mark.celery_worker``::

    @pytest.mark.celery_worker
    def test_it(live_celery_worker):  # implies transactional_db
        module_create(...)             # commits; the worker sees the rows
        live_celery_worker.wait_for(lambda: Row.objects.exists())

What it does:

* needs Redis (``REDIS_URL``) and PostgreSQL: the worker is another process,
  so it must reach the pytest-django *test* database (``test_<NAME>``) over a
  real connection, which SQLite's in-memory test database cannot offer. On a
  bare machine the test skips; in CI (CONTENTAPP_REQUIRE_SERVICES=1) it fails.
* starts ``celery -A contentapp worker -P solo`` with ``DATABASE_URL`` pointing
  at the test database and ``CELERY_TASK_ALWAYS_EAGER=0``;
* gives the worker a queue of its own and points the test process's Celery
  app at it (not eager, that queue), so messages other tests left on the
  broker never reach this worker and this test's messages reach no other;
* restores the app's configuration and stops the worker (by its pid) after
  the test, before the test database is flushed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from contentapp.celery import app as celery_app

from . import services

BASE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180  # generous: a loaded CI machine imports torch slowly


def reset_broker_connections() -> None:
    """Drop the Celery app's pooled broker connections so a changed broker_url takes effect."""
    celery_app.close()
    # close() keeps the producer pool when the connection pool was never made.
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def broker_down() -> Iterator[None]:
    """Send tasks to a broker nobody listens on (a closed loopback port), not eagerly."""
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:1/0")
    reset_broker_connections()
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        reset_broker_connections()


def worker_database_url() -> str:
    """A DATABASE_URL for the database this test process is connected to."""
    s = connection.settings_dict
    user = quote(s.get("USER") or "", safe="")
    password = quote(s.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{s['NAME']}"


class LiveWorker:
    """A running worker process and helpers to wait on what it does."""

    def __init__(self, process: subprocess.Popen, queue: str, log_path: Path) -> None:
        self.process = process
        self.queue = queue
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, condition: Callable[[], object], timeout: float = 300.0) -> object:
        """Poll condition until it is truthy; fail with the worker's log on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"Celery worker exited early:\n{self.log()[-4000:]}")
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s; worker log:\n{self.log()[-4000:]}")


@contextmanager
def live_worker(tmp_path: Path) -> Iterator[LiveWorker]:
    """Start a worker on a private queue, route this process's tasks to it, stop it after."""
    services.require_redis()
    services.require_postgres()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path / "celery-worker.log"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="contentapp.settings",
        DATABASE_URL=worker_database_url(),
        REDIS_URL=services.redis_url(),
        CELERY_TASK_ALWAYS_EAGER="0",
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
        "-c",
        "1",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        queue,
        "--loglevel",
        "INFO",
    ]
    saved = {
        key: celery_app.conf[key]
        for key in ("task_always_eager", "task_default_queue", "broker_url", "result_backend")
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    worker = LiveWorker(process, queue, log_path)
    try:
        worker.wait_for(lambda: "ready." in worker.log(), timeout=READY_TIMEOUT)
        celery_app.conf.update(
            task_always_eager=False,
            task_default_queue=queue,
            broker_url=services.redis_url(),
            result_backend=services.redis_url(),
        )
        reset_broker_connections()
        yield worker
    finally:
        celery_app.conf.update(saved)
        reset_broker_connections()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
