"""Review queue benchmark: the reviews API and the queue query at growing task counts (by hand).

    .venv/bin/python bench/review_queue.py                         # 100 then 1,000 open tasks
    .venv/bin/python bench/review_queue.py --sizes 100 1000 3000 --runs 30 --db h4_bench

It (re)creates a PostgreSQL database of its own (``--db`` on ``--pg``),
migrates it and grows the number of open review tasks step by step: modules
are created with ``module_create`` and submitted with ``version_submit`` (one
open task per required role, so 3 tasks per module; every seventh module is
overdue). At each size it times, in-process (no network, no gunicorn):

- ``GET /api/v1/reviews`` (first page of 50, and ``page_size=500``) and
  ``GET /api/v1/reviews?mine=true`` through Django's test client with a
  reviewer's token: view + serializer + database time;
- ``review_queue(user, {"mine": True})`` evaluated in full: the query alone.

It prints the median and 95th percentile of ``--runs`` runs and the number of
queries, which must not grow with the number of tasks.
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", default="h4_bench")
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
    from django.utils import timezone

    from content_modules.library import signals

    # Without Redis, Celery runs eagerly and would embed every new version in this
    # process; in production a worker does that (bench/affinity_bench.py times it).
    signals.version_content_changed.receivers = []
    signals.version_content_changed.sender_receivers_cache.clear()

    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)

    from content_modules.accounts.roles import Role
    from content_modules.review.models import ReviewTask
    from content_modules.review.queries import review_queue
    from content_modules.review.services import version_submit
    from tests.factories import api_client, ensure_vocabulary, make_module, make_user

    ensure_vocabulary()
    author = make_user(Role.AUTHOR, username="bench-author")
    reviewer = make_user(Role.LEGAL, username="bench-legal")
    client = api_client(reviewer)

    def timed(label: str, call, check) -> None:
        call()  # warm up: connection, caches
        with CaptureQueriesContext(connection) as captured:
            check(call())
        queries = len(captured)
        samples = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            call()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
        print(
            f"  {label:<44} median {statistics.median(samples):7.1f} ms   "
            f"p95 {p95:7.1f} ms   {queries:3d} queries"
        )

    def ok(response) -> None:
        assert response.status_code == 200, response.content[:300]

    modules = 0
    for size in sorted(args.sizes):
        start = time.perf_counter()
        while ReviewTask.objects.open().count() < size:
            version = make_module(author, body=f"Module {modules}: fewer events in the trial.")
            version_submit(actor=author, module=version.module)
            if modules % 7 == 0:
                ReviewTask.objects.filter(version=version).update(
                    due_at=timezone.now() - timezone.timedelta(days=1)
                )
            modules += 1
        open_tasks = ReviewTask.objects.open().count()
        mine = review_queue(reviewer, {"mine": True}).count()
        print(
            f"{open_tasks} open tasks ({modules} modules in review, {mine} in the legal queue; "
            f"grown in {time.perf_counter() - start:.1f} s)"
        )
        timed("GET /reviews (page of 50)", lambda: client.get("/api/v1/reviews"), ok)
        timed(
            "GET /reviews?page_size=500",
            lambda: client.get("/api/v1/reviews?page_size=500"),
            ok,
        )
        timed(
            "GET /reviews?mine=true&overdue=true",
            lambda: client.get("/api/v1/reviews?mine=true&overdue=true"),
            ok,
        )
        timed(
            "GET /reviews?mine=true (page of 50)",
            lambda: client.get("/api/v1/reviews?mine=true"),
            ok,
        )
        timed(
            "review_queue(mine) evaluated in full",
            lambda: list(review_queue(reviewer, {"mine": True})),
            lambda rows: None,
        )


if __name__ == "__main__":
    main()
