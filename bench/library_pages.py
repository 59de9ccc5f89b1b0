"""Author pages benchmark: library list (plain, filtered, searched), module and version pages.

    .venv/bin/python bench/library_pages.py                        # 100 then 1,000 modules
    .venv/bin/python bench/library_pages.py --sizes 100 1000 5000 --requests 30 --db h3_bench

It (re)creates a PostgreSQL database of its own (``--db`` on ``--pg``),
migrates it and grows the library step by step with ``module_create`` (tags,
themes and channels vary; every third module gets a second version, every
fifth is a variant of an earlier one). At each size it times the pages
in-process through Django's test client, signed in as an author: view +
template + database time, without network or gunicorn. For each page it
prints the median and 95th percentile and the number of queries, which must
not grow with the number of modules.
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
    parser.add_argument("--db", default="h3_bench")
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
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from content_modules.library import signals

    # Without Redis, Celery runs eagerly and would embed every new version in this
    # process; in production a worker does that (bench/affinity_bench.py times it).
    signals.version_content_changed.receivers = []
    signals.version_content_changed.sender_receivers_cache.clear()
    # Production-like rendering (no debug query log or template debug info).
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)

    from content_modules.accounts.roles import Role
    from content_modules.library.models import Channel, Module, TagKind, VersionStatus
    from content_modules.library.services import module_edit
    from tests.factories import (
        PASSWORD,
        VOCABULARY,
        ensure_vocabulary,
        force_status,
        make_module,
        make_user,
        tag,
    )

    ensure_vocabulary()
    author = make_user(Role.AUTHOR, username="bench-author")
    client = Client()
    assert client.login(username=author.username, password=PASSWORD)
    channels = list(Channel.objects.all())
    vocab = {kind: [tag(kind, slug) for slug in slugs] for kind, slugs in VOCABULARY.items()}

    def timed(label: str, url: str) -> None:
        client.get(url)  # warm up: connection, session, template caches
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        queries = len(captured)  # read now: the next request clears the query log
        assert response.status_code == 200, response.content[:300]
        samples = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
        print(
            f"  {label:<40} median {statistics.median(samples):7.1f} ms   "
            f"p95 {p95:7.1f} ms   {queries:3d} queries"
        )

    count = 0
    roots: list[Module] = []
    for size in sorted(args.sizes):
        start = time.perf_counter()
        while count < size:
            n = count
            variant_of = roots[n % len(roots)] if roots and n % 5 == 0 else None
            version = make_module(
                author,
                title=f"Bench module {n}",
                body=f"Module {n}: in the pivotal trial patients had fewer events.",
                brand="cardiozen" if n % 2 else "neurolift",
                market="UK" if n % 3 else "DE",
                message=vocab[TagKind.MESSAGE][n % 5],
                tonality=vocab[TagKind.TONALITY][n % 3],
                format=vocab[TagKind.FORMAT][n % 3],
                themes=vocab[TagKind.THEME][: 1 + n % 3],
                channels=channels[: 1 + n % len(channels)],
                variant_of=variant_of,
            )
            if variant_of is None:
                roots.append(version.module)
            if n % 3 == 0:
                force_status(version, VersionStatus.APPROVED)
                module_edit(actor=author, module=version.module, changes={"title": f"v2 {n}"})
            count += 1
        print(f"{count} modules (grown in {time.perf_counter() - start:.1f} s)")
        some = Module.objects.order_by("id")[count // 2]
        timed("library list (page of 25)", "/library/")
        timed("library list, last page", f"/library/?page={(count + 24) // 25}")
        timed("list filtered (message + channel)", "/library/?message=efficacy&channel=email")
        timed("list searched (q=pivotal)", "/library/?q=pivotal")
        timed("list only mine", "/library/?mine=true")
        timed("module page (2 versions, variants)", f"/library/modules/{some.pk}/")
        timed("version page", f"/library/modules/{some.pk}/versions/1/")


if __name__ == "__main__":
    main()
