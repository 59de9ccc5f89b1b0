"""Content performance latency on a large existing database (run by hand, never in the suite).

Times each grouping of ``GET /api/v1/analytics/content`` (through the Django test
client, so parsing, validation, the query and JSON rendering are all counted),
the unused and fatigued lists, and the filters a rollup answers only since it
carries the HCP's microsegment (a microsegment filter; by=segment with a brand).
``--relabel N`` also times moving N HCPs to another microsegment and back (what an
engagement fit does), which the triggers turn into moves between rollup rows.
Point it at a migrated database that already holds the events::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nba_bench \\
        .venv/bin/python bench/analytics_bench.py [--calls 20] [--days 180]

It reads only; it creates one throwaway admin user for the API and deletes it at
the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from content_modules.affinity.models import HCP, EngagementEvent  # noqa: E402
from content_modules.analytics import services  # noqa: E402
from content_modules.analytics.models import ContentDaily, SegmentDaily  # noqa: E402
from content_modules.library.models import Module  # noqa: E402

CONTENT = "/api/v1/analytics/content"


def timed(call, n: int) -> tuple[float, float, float]:
    """(p50, p90, max) in milliseconds over n calls after one warm-up."""
    call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], times[-1]


def relabel(n: int) -> None:
    """Move ``n`` HCPs of one microsegment to another and back, in chunks as a fit does."""
    from content_modules.engagement.training import UPDATE_CHUNK

    source = HCP.objects.exclude(microsegment="").values_list("microsegment", flat=True).first()
    ids = list(HCP.objects.filter(microsegment=source).values_list("id", flat=True)[:n])
    events = EngagementEvent.objects.filter(hcp_id__in=ids).count()
    timings = []
    for label in ("ms-bench", source):
        t0 = time.perf_counter()
        for start in range(0, len(ids), UPDATE_CHUNK):
            HCP.objects.filter(id__in=ids[start : start + UPDATE_CHUNK]).update(microsegment=label)
        timings.append(time.perf_counter() - t0)
    print(
        f"relabel {len(ids):,} HCPs ({events:,} events) to another microsegment: "
        f"{timings[0]:.1f} s, and back: {timings[1]:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--days", type=int, default=180, help="window ending today")
    parser.add_argument("--relabel", type=int, default=0, help="HCPs to relabel (and back)")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    print(f"database: {connection.settings_dict['NAME']} ({connection.vendor})")
    print(
        f"events {EngagementEvent.objects.count():,}, HCPs {HCP.objects.count():,}, "
        f"modules {Module.objects.count():,}; rollup rows: content "
        f"{ContentDaily.objects.count():,}, segment {SegmentDaily.objects.count():,}"
    )
    until = services.today_utc()
    since = until - timedelta(days=args.days - 1)
    brand = Module.objects.values_list("brand__slug", flat=True).first()
    user = get_user_model().objects.create_superuser(
        username=f"analytics-bench-{os.getpid()}", password="x", email=""
    )
    try:
        client = APIClient()
        client.force_authenticate(user)
        base = {"since": since.isoformat(), "until": until.isoformat()}
        cases = [(f"by={by}", CONTENT, {**base, "by": by}) for by in services.GROUPINGS]
        cases += [
            ("by=module&channel=email", CONTENT, {**base, "by": "module", "channel": "email"}),
            ("by=module (CSV)", CONTENT + ".csv", {**base, "by": "module"}),
            (
                "by=segment&brand=..",
                CONTENT,
                {**base, "by": "segment", "brand": brand},
            ),
            (
                "by=module&microsegment=ms-1",
                CONTENT,
                {**base, "by": "module", "microsegment": "ms-1"},
            ),
            ("unused?days=90", "/api/v1/analytics/unused", {"days": 90}),
            ("unused?days=90&rarely=50", "/api/v1/analytics/unused", {"days": 90, "rarely": 50}),
            ("fatigued", "/api/v1/analytics/fatigued", {}),
        ]
        print(f"window {since} .. {until}; {args.calls} calls each after one warm-up (ms)")
        print(f"{'request':44s} {'p50':>8s} {'p90':>8s} {'max':>8s} {'rows':>6s}")
        for name, path, query in cases:
            response = client.get(path, query)
            assert response.status_code == 200, (name, response.status_code, response.content)
            if path.endswith(".csv"):
                rows = response.content.count(b"\n") - 1
            else:
                body = response.json()
                rows = len(body.get("rows", body.get("results", [])))
            p50, p90, worst = timed(lambda p=path, q=query: client.get(p, q), args.calls)
            print(f"{name:44s} {p50:8.1f} {p90:8.1f} {worst:8.1f} {rows:6d}", flush=True)
        if args.relabel:
            relabel(args.relabel)
    finally:
        # Straight DELETE: the user owns nothing, and the collector would visit every
        # app's tables (some may not be migrated in a bench database).
        get_user_model().objects.filter(pk=user.pk)._raw_delete(connection.alias)


if __name__ == "__main__":
    main()
