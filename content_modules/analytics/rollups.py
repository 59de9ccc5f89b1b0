"""Rebuilding the rollups when most HCPs change microsegment at once.

The triggers (migrations 0002, 0003) move an HCP's counts between microsegments
when its ``microsegment`` changes: about 2 ms of row moves per HCP at the
benchmark's scale (23 events an HCP), so a fit relabelling 100,000 HCPs would
spend minutes there. Inside ``deferred()`` the relabel trigger stands aside and,
before the block's transaction ends, both rollups are recounted from the events
in two grouped passes (37 s for 100,000 HCPs and 2,000,000 events, the HCP
updates included), so they stay exact; after the commit both are vacuumed.

Concurrency: the rebuild locks both rollups ``EXCLUSIVE`` (readers go on reading
the previous counts; writers, the event triggers, wait for the commit). An event
committed before the lock is in the recount; one not yet committed waits at its
trigger and adds itself afterwards. The HCP rows are updated before the lock is
taken, the order the event triggers use (HCP rows, then rollup rows).

SQLite (development) has no statement triggers to defer: the row triggers move
the counts as usual and ``deferred()`` only opens a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from .models import COUNTED_TYPES

COUNTED = "(" + ", ".join(f"'{t}'" for t in COUNTED_TYPES) + ")"
DAY = "(e.occurred_at AT TIME ZONE 'UTC')::date"
COUNTS = (
    "count(*) FILTER (WHERE e.type = 'delivered'), "
    "count(*) FILTER (WHERE e.type = 'opened'), "
    "count(*) FILTER (WHERE e.type = 'clicked')"
)
POSTGRES_REBUILD = f"""
LOCK TABLE analytics_contentdaily, analytics_segmentdaily IN EXCLUSIVE MODE;
DELETE FROM analytics_contentdaily;
DELETE FROM analytics_segmentdaily;
INSERT INTO analytics_contentdaily
    (day, module_id, version_key, channel, microsegment, deliveries, opens, clicks)
SELECT {DAY}, e.module_id, COALESCE(e.version_id, 0), e.channel, h.microsegment, {COUNTS}
  FROM affinity_engagementevent e JOIN affinity_hcp h ON h.id = e.hcp_id
 WHERE e.type IN {COUNTED}
 GROUP BY 1, 2, 3, 4, 5;
INSERT INTO analytics_segmentdaily (day, microsegment, channel, deliveries, opens, clicks)
SELECT day, microsegment, channel, sum(deliveries), sum(opens), sum(clicks)
  FROM analytics_contentdaily
 GROUP BY 1, 2, 3;
"""


@contextmanager
def deferred() -> Iterator[None]:
    """A transaction in which HCP relabels do not move rollup rows; a recount at its end."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('contentapp.rollups_deferred', 'on', true)")
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('contentapp.rollups_deferred', 'off', true)")
            cursor.execute(POSTGRES_REBUILD)
        transaction.on_commit(_vacuum)


def _vacuum() -> None:
    """After the commit: the recount left the old rows dead; reads scan the whole table
    (measured: 488 ms for by=module once vacuumed, 840 ms with 5.6M dead rows)."""
    if connection.in_atomic_block:
        # Still inside a transaction (a caller that runs commit callbacks early, as
        # tests capturing them do): VACUUM cannot run there; autovacuum will.
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) analytics_contentdaily, analytics_segmentdaily")
