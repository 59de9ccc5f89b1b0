"""Reviewer pages benchmark: queue, filtered queue, review page and dashboard (run by hand).

    .venv/bin/python bench/review_pages.py                        # 100 then 1,000 open tasks
    .venv/bin/python bench/review_pages.py --sizes 100 1000 3000 --requests 30 --db h7_bench
    .venv/bin/python bench/review_pages.py --reuse --sizes 0     # time again, create nothing

It (re)creates a PostgreSQL database of its own (``--db`` on ``--pg``),
migrates it and grows the number of modules in review step by step (each
submitted through ``version_submit``, so every module adds one open task per
role; every seventh is overdue). At each size it times the pages in-process
through Django's test client, signed in as the legal reviewer, whose queue
holds one open task per module: view + template + database time, without
network or gunicorn. For each page it prints the median and 95th percentile
and the number of queries, which must not grow with the number of tasks.
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
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--db", default="h7_review_bench")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--profile", action="store_true", help="cProfile the queue page once")
    parser.add_argument(
        "--reuse", action="store_true", help="time the pages of the existing --db, create nothing"
    )
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = (
        f"{args.pg}/{args.db}" if args.reuse else fresh_database(args.db, args.pg)
    )
    os.environ.pop("REDIS_URL", None)
    # Production-like rendering: no debug cursor, cached templates.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    os.environ.setdefault("MEDIA_ROOT", str(ROOT / "media" / args.db))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)

    from datetime import timedelta

    from content_modules.accounts.roles import Role
    from content_modules.library import signals
    from content_modules.review.models import ReviewTask
    from content_modules.review.services import version_submit
    from tests.factories import ensure_vocabulary, make_module, make_user

    # Embedding every new version (an eager Celery task here) is not what this
    # measures and would dominate the set-up time, so its receivers are dropped.
    signals.version_content_changed.receivers.clear()
    signals.version_content_changed.sender_receivers_cache.clear()

    from django.contrib.auth.models import User

    ensure_vocabulary()
    if args.reuse:
        author = User.objects.get(username="bench-author")
        legal = User.objects.get(username="bench-legal")
    else:
        author = make_user(Role.AUTHOR, username="bench-author")
        legal = make_user(Role.LEGAL, username="bench-legal")
    client = Client()
    client.force_login(legal)
    created = ReviewTask.objects.filter(role="legal").count() if args.reuse else 0

    def grow_to(n: int) -> None:
        nonlocal created
        start = time.perf_counter()
        for i in range(created, n):
            version = make_module(
                author,
                brand="cardiozen" if i % 2 else "neurolift",
                market="UK" if i % 3 else "DE",
                title=f"Bench module {i}",
            )
            version_submit(actor=author, module=version.module)
            if i % 7 == 0:
                ReviewTask.objects.filter(version=version).update(
                    due_at=timezone.now() - timedelta(days=1)
                )
        print(f"\n{n - created} modules submitted in {time.perf_counter() - start:.1f} s")
        created = n

    def timed(label: str, url: str) -> None:
        executed = []

        def count(execute, sql, params, many, context):
            executed.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        samples = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
        print(
            f"  {label:<44} median {statistics.median(samples):7.1f} ms   "
            f"p95 {p95:7.1f} ms   {len(executed):3d} queries"
        )

    for size in args.sizes:
        if not args.reuse:
            grow_to(size)
        open_tasks = ReviewTask.objects.open().count()
        size = created if args.reuse else size
        print(f"{size} modules in review: {open_tasks} open tasks ({size} in the legal queue)")
        task = ReviewTask.objects.filter(role="legal").order_by("-id").first()
        if args.profile:
            import cProfile
            import pstats

            client.get("/review/")
            profiler = cProfile.Profile()
            profiler.runcall(client.get, "/review/")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        timed("GET /review/ (my queue, page of 50)", "/review/")
        timed("GET /review/?overdue=true&brand=cardiozen", "/review/?overdue=true&brand=cardiozen")
        timed("GET /review/?page=last", "/review/?page=last")
        timed("GET /review/tasks/{id}/ (review page)", f"/review/tasks/{task.pk}/")
        timed("GET /review/dashboard/", "/review/dashboard/")


if __name__ == "__main__":
    main()
