"""Two gunicorn servers on one database: a withdrawal through one is never served by the other.

Each server process keeps its own in-memory catalogue; the generation row in
PostgreSQL is what they share. No Redis is involved.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from content_modules.affinity.models import HCP
from tests import celery_support, services
from tests.factories import PASSWORD, make_module, new_token
from tests.review.helpers import approve_all

from .redis_support import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
BASE_DIR = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn(tmp_path: Path):
    """One gunicorn process (two sync workers) on the test database; yields its port."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=celery_support.worker_database_url(),
        DJANGO_SETTINGS_MODULE="contentapp.settings",
        LOG_LEVEL="ERROR",
    )
    env.pop("REDIS_URL", None)
    log = (tmp_path / f"gunicorn-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "contentapp.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / f"gunicorn-{port}.log").read_text())
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def call(port: int, method: str, path: str, token: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def served(port: int, token: str) -> set[int]:
    """Modules one server answers on every delivery endpoint (each worker, several tries)."""
    seen: set[int] = set()
    for _ in range(4):  # the two workers of the server take turns
        _, listed = call(port, "GET", "/api/v1/content", token)
        seen |= {r["module"] for r in listed["results"]}
        _, rec = call(port, "POST", "/api/v1/recommendations", token, {"hcp": "HCP-1", "k": 50})
        seen |= {i["module"] for i in rec["items"]}
    return seen


def test_a_withdrawal_through_one_server_is_never_served_by_another(
    transactional_db, tmp_path, author, medical, legal, regulatory, engine
):
    services.require_postgres()
    keep = approve_all(make_module(author), medical, legal, regulatory)
    pulled = approve_all(make_module(author), medical, legal, regulatory)
    HCP.objects.create(external_id="HCP-1")
    # The servers verify passwords with the default hashers, not the tests' fast MD5.
    medical.password = PBKDF2PasswordHasher().encode(PASSWORD, "scaleoutsalt")
    medical.save(update_fields=["password"])
    engine_token = new_token(engine)
    medical_token = new_token(medical)
    with ExitStack() as stack:
        a = stack.enter_context(gunicorn(tmp_path))
        b = stack.enter_context(gunicorn(tmp_path))
        # Both servers have built their catalogues with both modules
        assert served(a, engine_token) == {keep.module_id, pulled.module_id}
        assert served(b, engine_token) == {keep.module_id, pulled.module_id}
        # When the module is withdrawn through server A
        status, body = call(
            a,
            "POST",
            f"/api/v1/modules/{pulled.module_id}/withdraw",
            medical_token,
            {"reason": "Outdated claim", "password": PASSWORD},
        )
        assert status == 200, body
        # Then server B's very next answers never include it, on any worker
        assert served(b, engine_token) == {keep.module_id}
        status, _ = call(b, "GET", f"/api/v1/content/{pulled.module_id}", engine_token)
        assert status == 404
        assert served(a, engine_token) == {keep.module_id}
