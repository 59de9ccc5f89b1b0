"""Content performance latency on a large existing database (run by hand, never in the suite).

Times each grouping of ``GET /api/v1/analytics/content`` (through the Django test
client, so parsing, validation, the query and JSON rendering are all counted),
the unused and fatigued lists, and the events path (a microsegment filter).
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--days", type=int, default=180, help="window ending today")
    parser.add_argument("--events-calls", type=int, default=5, help="calls on the events path")
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
                "by=segment&brand=.. (events path)",
                CONTENT,
                {**base, "by": "segment", "brand": brand},
            ),
            (
                "by=module&microsegment=ms-1 (events path)",
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
            n = args.events_calls if "events path" in name else args.calls
            p50, p90, worst = timed(lambda p=path, q=query: client.get(p, q), n)
            print(f"{name:44s} {p50:8.1f} {p90:8.1f} {worst:8.1f} {rows:6d}", flush=True)
    finally:
        # Straight DELETE: the user owns nothing, and the collector would visit every
        # app's tables (some may not be migrated in a bench database).
        get_user_model().objects.filter(pk=user.pk)._raw_delete(connection.alias)


if __name__ == "__main__":
    main()
