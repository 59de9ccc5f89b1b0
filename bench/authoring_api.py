"""Authoring API benchmark: list, filter, read and create modules (run by hand).

    .venv/bin/python bench/authoring_api.py                    # 2,000 modules, 200 requests each
    .venv/bin/python bench/authoring_api.py --modules 500 --requests 50 --db h1_bench

It (re)creates a PostgreSQL database of its own (``--db`` on ``--pg``),
migrates it, creates modules through ``module_create`` (a third of them
approved, then edited into a second draft, so lists mix states), and times
requests in-process through Django's test client with a real token: the
figures are view + serializer + database time, without network or gunicorn.
For each request it prints the median and 95th percentile and the number of
queries, which must not depend on the number of modules.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fresh_database(name: str, server: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", default="h1_bench")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = fresh_database(args.db, args.pg)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    os.environ.setdefault("MEDIA_ROOT", str(ROOT / "media" / args.db))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from content_modules.library import signals

    # Without Redis, Celery runs eagerly and would embed every new version in this
    # process; in production that runs in a worker, and bench/affinity_bench.py times it.
    signals.version_content_changed.receivers = []
    signals.version_content_changed.sender_receivers_cache.clear()

    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)

    from content_modules.accounts.roles import Role
    from content_modules.library.models import Channel, TagKind, VersionStatus
    from content_modules.library.services import module_edit
    from tests.factories import (
        api_client,
        ensure_vocabulary,
        force_status,
        make_module,
        make_user,
        tag,
    )

    ensure_vocabulary()
    author = make_user(Role.AUTHOR, username="bench-author")
    channels = list(Channel.objects.all())
    start = time.perf_counter()
    messages = ["efficacy", "safety", "dosing", "mechanism-of-action", "access"]
    for i in range(args.modules):
        version = make_module(
            author,
            brand="cardiozen" if i % 2 else "neurolift",
            market="UK" if i % 3 else "DE",
            message=tag(TagKind.MESSAGE, messages[i % len(messages)]),
            channels=channels[: 1 + i % len(channels)],
            body=f"Module {i}: patients had fewer events in the pivotal trial.",
        )
        if i % 3 == 0:
            force_status(version, VersionStatus.APPROVED)
            module_edit(actor=author, module=version.module, changes={"title": f"Next {i}"})
    print(f"created {args.modules} modules in {time.perf_counter() - start:.1f} s")

    client = api_client(author)
    some_id = version.module_id

    def timed(label: str, call) -> None:
        call()  # warm up: connection, caches
        with CaptureQueriesContext(connection) as captured:
            response = call()
        assert response.status_code in (200, 201), response.content[:300]
        queries = len(captured)
        samples = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            call()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(
            f"{label:<48} median {statistics.median(samples):7.1f} ms   "
            f"p95 {p95:7.1f} ms   {queries:3d} queries"
        )

    timed("GET /modules (page of 50)", lambda: client.get("/api/v1/modules"))
    timed("GET /modules?page_size=200", lambda: client.get("/api/v1/modules?page_size=200"))
    timed(
        "GET /modules?status=draft&channel=email&message=…",
        lambda: client.get("/api/v1/modules?status=draft&channel=email&message=safety"),
    )
    timed(
        "GET /modules?q=pivotal&brand=cardiozen",
        lambda: client.get("/api/v1/modules?q=pivotal&brand=cardiozen"),
    )
    timed("GET /modules/{id}", lambda: client.get(f"/api/v1/modules/{some_id}"))
    timed("GET /modules/{id}/versions", lambda: client.get(f"/api/v1/modules/{some_id}/versions"))

    body = {
        "title": "Bench",
        "headline": "Bench headline",
        "body": "Bench body",
        "key_message": "Bench key message",
        "brand": "cardiozen",
        "market": "UK",
        "channels": ["email", "web"],
        "tags": {
            "message": "efficacy",
            "theme": ["outcomes"],
            "tonality": "clinical",
            "format": "text",
        },
    }
    timed("POST /modules (JSON)", lambda: client.post("/api/v1/modules", body, format="json"))


if __name__ == "__main__":
    main()
