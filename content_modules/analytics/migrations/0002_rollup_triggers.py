"""Triggers that keep the analytics rollups exact, and the one-off backfill.

``analytics_contentdaily`` counts events per (UTC day, module, version, channel);
``analytics_segmentdaily`` per (UTC day, the HCP's current microsegment, channel).
They change inside the transaction that inserts, deletes or updates events,
whichever code path does it (ingestion's COPY-and-insert, the ORM, the admin,
an HCP's erasure, raw SQL), so a late event lands in its own day's row and
every answer equals a direct count. An update of an HCP's microsegment (each
engagement fit) moves that HCP's counts from the old segment to the new one.

PostgreSQL: statement-level triggers with transition tables for inserts and
deletes (one grouped upsert per ingested batch, not one per event), row-level
ones for the rare updates of counted columns. The event triggers lock the
HCP rows they read ``FOR SHARE``, so a concurrent relabelling waits for them
(or they for it) and no event is counted under a segment its HCP just left.
Upserts are sorted by key so that concurrent batches take row locks in one
order. Rows that fall to zero are removed, so a deleted event leaves nothing.

SQLite (development, tests without PostgreSQL): row-level triggers, same rules.

``CREATE TRIGGER`` locks the events table against writes until the migration
commits, so no event can slip between the backfill and the triggers.
"""

from django.db import migrations

COUNTED = "('delivered', 'opened', 'clicked')"

# --- PostgreSQL ---------------------------------------------------------------------------

PG_DAY = "(e.occurred_at AT TIME ZONE 'UTC')::date"
PG_COUNTS = (
    "count(*) FILTER (WHERE e.type = 'delivered'), "
    "count(*) FILTER (WHERE e.type = 'opened'), "
    "count(*) FILTER (WHERE e.type = 'clicked')"
)


def _pg_content_upsert(source: str, sign: str) -> str:
    return f"""
    INSERT INTO analytics_contentdaily AS r
        (day, module_id, version_key, channel, deliveries, opens, clicks)
    SELECT {PG_DAY}, e.module_id, COALESCE(e.version_id, 0), e.channel,
           {sign}count(*) FILTER (WHERE e.type = 'delivered'),
           {sign}count(*) FILTER (WHERE e.type = 'opened'),
           {sign}count(*) FILTER (WHERE e.type = 'clicked')
      FROM {source} e
     WHERE e.type IN {COUNTED}
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, module_id, version_key, channel) DO UPDATE
       SET deliveries = r.deliveries + EXCLUDED.deliveries,
           opens = r.opens + EXCLUDED.opens,
           clicks = r.clicks + EXCLUDED.clicks;
    """


def _pg_segment_upsert(source: str, sign: str) -> str:
    return f"""
    INSERT INTO analytics_segmentdaily AS r
        (day, microsegment, channel, deliveries, opens, clicks)
    SELECT {PG_DAY}, h.microsegment, e.channel,
           {sign}count(*) FILTER (WHERE e.type = 'delivered'),
           {sign}count(*) FILTER (WHERE e.type = 'opened'),
           {sign}count(*) FILTER (WHERE e.type = 'clicked')
      FROM {source} e
      JOIN (SELECT id, microsegment FROM affinity_hcp
             WHERE id IN (SELECT s.hcp_id FROM {source} s WHERE s.type IN {COUNTED})
             ORDER BY id FOR SHARE) h ON h.id = e.hcp_id
     WHERE e.type IN {COUNTED}
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (day, microsegment, channel) DO UPDATE
       SET deliveries = r.deliveries + EXCLUDED.deliveries,
           opens = r.opens + EXCLUDED.opens,
           clicks = r.clicks + EXCLUDED.clicks;
    """


def _row(record: str) -> str:
    """One trigger row (OLD or NEW) as a one-row table with the columns the upserts read."""
    columns = ("type", "occurred_at", "module_id", "version_id", "channel", "hcp_id")
    return "(SELECT " + ", ".join(f"{record}.{c} AS {c}" for c in columns) + ")"


def _pg_drop_zeros(source: str) -> str:
    """Remove the rows a subtraction from ``source`` brought to zero (by key, not a scan)."""
    return f"""
    DELETE FROM analytics_contentdaily r
     USING (SELECT DISTINCT {PG_DAY} AS day, e.module_id, COALESCE(e.version_id, 0) AS version_key,
                   e.channel
              FROM {source} e WHERE e.type IN {COUNTED}) k
     WHERE r.day = k.day AND r.module_id = k.module_id AND r.version_key = k.version_key
       AND r.channel = k.channel AND r.deliveries = 0 AND r.opens = 0 AND r.clicks = 0;
    DELETE FROM analytics_segmentdaily
     WHERE deliveries = 0 AND opens = 0 AND clicks = 0;
    """


# The counters are updated in place on every ingested batch: fillfactor leaves room on
# each page so those updates stay HOT (no index entries rewritten). No index may cover a
# counter column, or no update could be HOT. The segment table is a few thousand rows.
POSTGRES_UP = f"""
ALTER TABLE analytics_contentdaily SET (fillfactor = 70);
ALTER TABLE analytics_segmentdaily SET (fillfactor = 70);

CREATE OR REPLACE FUNCTION analytics_events_inserted() RETURNS trigger AS $$
BEGIN
    {_pg_content_upsert("new_events", "")}
    {_pg_segment_upsert("new_events", "")}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION analytics_events_deleted() RETURNS trigger AS $$
BEGIN
    {_pg_content_upsert("old_events", "-")}
    {_pg_segment_upsert("old_events", "-")}
    {_pg_drop_zeros("old_events")}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Row level: updates of counted columns are rare (a deleted version sets version NULL).
CREATE OR REPLACE FUNCTION analytics_event_updated() RETURNS trigger AS $$
BEGIN
    {_pg_content_upsert(_row("OLD"), "-")}
    {_pg_segment_upsert(_row("OLD"), "-")}
    {_pg_content_upsert(_row("NEW"), "")}
    {_pg_segment_upsert(_row("NEW"), "")}
    {_pg_drop_zeros(_row("OLD"))}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION analytics_hcps_relabelled() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT o.id, o.microsegment AS old_segment, n.microsegment AS new_segment
          FROM old_hcps o JOIN new_hcps n ON n.id = o.id
         WHERE o.microsegment IS DISTINCT FROM n.microsegment
    ), counts AS (
        SELECT {PG_DAY} AS day, m.old_segment, m.new_segment, e.channel,
               count(*) FILTER (WHERE e.type = 'delivered') AS d,
               count(*) FILTER (WHERE e.type = 'opened') AS o,
               count(*) FILTER (WHERE e.type = 'clicked') AS c
          FROM affinity_engagementevent e JOIN moved m ON e.hcp_id = m.id
         WHERE e.type IN {COUNTED}
         GROUP BY 1, 2, 3, 4
    ), deltas AS (
        SELECT day, old_segment AS microsegment, channel, -d AS d, -o AS o, -c AS c FROM counts
        UNION ALL
        SELECT day, new_segment, channel, d, o, c FROM counts
    )
    INSERT INTO analytics_segmentdaily AS r
        (day, microsegment, channel, deliveries, opens, clicks)
    SELECT day, microsegment, channel, sum(d), sum(o), sum(c)
      FROM deltas GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, microsegment, channel) DO UPDATE
       SET deliveries = r.deliveries + EXCLUDED.deliveries,
           opens = r.opens + EXCLUDED.opens,
           clicks = r.clicks + EXCLUDED.clicks;
    DELETE FROM analytics_segmentdaily WHERE deliveries = 0 AND opens = 0 AND clicks = 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER analytics_on_event_insert AFTER INSERT ON affinity_engagementevent
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_inserted();
CREATE TRIGGER analytics_on_event_delete AFTER DELETE ON affinity_engagementevent
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_deleted();
CREATE TRIGGER analytics_on_event_update
    AFTER UPDATE OF type, occurred_at, module_id, version_id, channel, hcp_id
    ON affinity_engagementevent
    FOR EACH ROW
    WHEN ((OLD.type, OLD.occurred_at, OLD.module_id, OLD.version_id, OLD.channel, OLD.hcp_id)
          IS DISTINCT FROM
          (NEW.type, NEW.occurred_at, NEW.module_id, NEW.version_id, NEW.channel, NEW.hcp_id))
    EXECUTE FUNCTION analytics_event_updated();
CREATE TRIGGER analytics_on_hcp_update AFTER UPDATE ON affinity_hcp
    REFERENCING OLD TABLE AS old_hcps NEW TABLE AS new_hcps
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_hcps_relabelled();

INSERT INTO analytics_contentdaily (day, module_id, version_key, channel, deliveries, opens, clicks)
SELECT {PG_DAY}, e.module_id, COALESCE(e.version_id, 0), e.channel, {PG_COUNTS}
  FROM affinity_engagementevent e
 WHERE e.type IN {COUNTED}
 GROUP BY 1, 2, 3, 4;
INSERT INTO analytics_segmentdaily (day, microsegment, channel, deliveries, opens, clicks)
SELECT {PG_DAY}, h.microsegment, e.channel, {PG_COUNTS}
  FROM affinity_engagementevent e JOIN affinity_hcp h ON h.id = e.hcp_id
 WHERE e.type IN {COUNTED}
 GROUP BY 1, 2, 3;
ANALYZE analytics_contentdaily;
ANALYZE analytics_segmentdaily;
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS analytics_on_event_insert ON affinity_engagementevent;
DROP TRIGGER IF EXISTS analytics_on_event_delete ON affinity_engagementevent;
DROP TRIGGER IF EXISTS analytics_on_event_update ON affinity_engagementevent;
DROP TRIGGER IF EXISTS analytics_on_hcp_update ON affinity_hcp;
DROP FUNCTION IF EXISTS analytics_events_inserted();
DROP FUNCTION IF EXISTS analytics_events_deleted();
DROP FUNCTION IF EXISTS analytics_event_updated();
DROP FUNCTION IF EXISTS analytics_hcps_relabelled();
ALTER TABLE analytics_contentdaily RESET (fillfactor);
ALTER TABLE analytics_segmentdaily RESET (fillfactor);
DELETE FROM analytics_contentdaily;
DELETE FROM analytics_segmentdaily;
"""

# --- SQLite -------------------------------------------------------------------------------


def _sqlite_content(row: str, sign: str) -> str:
    return f"""INSERT INTO analytics_contentdaily
        (day, module_id, version_key, channel, deliveries, opens, clicks)
        SELECT date({row}.occurred_at), {row}.module_id, COALESCE({row}.version_id, 0),
               {row}.channel, {sign}({row}.type = 'delivered'), {sign}({row}.type = 'opened'),
               {sign}({row}.type = 'clicked')
         WHERE {row}.type IN {COUNTED}
        ON CONFLICT (day, module_id, version_key, channel) DO UPDATE
           SET deliveries = deliveries + excluded.deliveries,
               opens = opens + excluded.opens, clicks = clicks + excluded.clicks;"""


def _sqlite_segment(row: str, sign: str) -> str:
    return f"""INSERT INTO analytics_segmentdaily
        (day, microsegment, channel, deliveries, opens, clicks)
        SELECT date({row}.occurred_at), h.microsegment, {row}.channel,
               {sign}({row}.type = 'delivered'), {sign}({row}.type = 'opened'),
               {sign}({row}.type = 'clicked')
          FROM affinity_hcp h
         WHERE h.id = {row}.hcp_id AND {row}.type IN {COUNTED}
        ON CONFLICT (day, microsegment, channel) DO UPDATE
           SET deliveries = deliveries + excluded.deliveries,
               opens = opens + excluded.opens, clicks = clicks + excluded.clicks;"""


SQLITE_DROP_ZEROS = """
    DELETE FROM analytics_contentdaily WHERE deliveries = 0 AND opens = 0 AND clicks = 0;
    DELETE FROM analytics_segmentdaily WHERE deliveries = 0 AND opens = 0 AND clicks = 0;"""

SQLITE_RELABEL = f"""INSERT INTO analytics_segmentdaily
        (day, microsegment, channel, deliveries, opens, clicks)
        SELECT date(e.occurred_at), {{segment}}, e.channel,
               {{sign}}sum(e.type = 'delivered'), {{sign}}sum(e.type = 'opened'),
               {{sign}}sum(e.type = 'clicked')
          FROM affinity_engagementevent e
         WHERE e.hcp_id = NEW.id AND e.type IN {COUNTED}
         GROUP BY 1, 3
        ON CONFLICT (day, microsegment, channel) DO UPDATE
           SET deliveries = deliveries + excluded.deliveries,
               opens = opens + excluded.opens, clicks = clicks + excluded.clicks;"""

SQLITE_UP = [
    f"""CREATE TRIGGER analytics_on_event_insert AFTER INSERT ON affinity_engagementevent
        BEGIN {_sqlite_content("NEW", "")} {_sqlite_segment("NEW", "")} END""",
    f"""CREATE TRIGGER analytics_on_event_delete AFTER DELETE ON affinity_engagementevent
        BEGIN {_sqlite_content("OLD", "-")} {_sqlite_segment("OLD", "-")} {SQLITE_DROP_ZEROS} END""",
    f"""CREATE TRIGGER analytics_on_event_update
        AFTER UPDATE OF type, occurred_at, module_id, version_id, channel, hcp_id
        ON affinity_engagementevent
        WHEN OLD.type IS NOT NEW.type OR OLD.occurred_at IS NOT NEW.occurred_at
          OR OLD.module_id IS NOT NEW.module_id OR OLD.version_id IS NOT NEW.version_id
          OR OLD.channel IS NOT NEW.channel OR OLD.hcp_id IS NOT NEW.hcp_id
        BEGIN {_sqlite_content("OLD", "-")} {_sqlite_segment("OLD", "-")}
              {_sqlite_content("NEW", "")} {_sqlite_segment("NEW", "")} {SQLITE_DROP_ZEROS} END""",
    f"""CREATE TRIGGER analytics_on_hcp_update AFTER UPDATE OF microsegment ON affinity_hcp
        WHEN OLD.microsegment IS NOT NEW.microsegment
        BEGIN {SQLITE_RELABEL.format(segment="OLD.microsegment", sign="-")}
              {SQLITE_RELABEL.format(segment="NEW.microsegment", sign="")}
              DELETE FROM analytics_segmentdaily
               WHERE deliveries = 0 AND opens = 0 AND clicks = 0; END""",
    f"""INSERT INTO analytics_contentdaily
        (day, module_id, version_key, channel, deliveries, opens, clicks)
        SELECT date(e.occurred_at), e.module_id, COALESCE(e.version_id, 0), e.channel,
               sum(e.type = 'delivered'), sum(e.type = 'opened'), sum(e.type = 'clicked')
          FROM affinity_engagementevent e WHERE e.type IN {COUNTED} GROUP BY 1, 2, 3, 4""",
    f"""INSERT INTO analytics_segmentdaily
        (day, microsegment, channel, deliveries, opens, clicks)
        SELECT date(e.occurred_at), h.microsegment, e.channel,
               sum(e.type = 'delivered'), sum(e.type = 'opened'), sum(e.type = 'clicked')
          FROM affinity_engagementevent e JOIN affinity_hcp h ON h.id = e.hcp_id
         WHERE e.type IN {COUNTED} GROUP BY 1, 2, 3""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS analytics_on_event_insert",
    "DROP TRIGGER IF EXISTS analytics_on_event_delete",
    "DROP TRIGGER IF EXISTS analytics_on_event_update",
    "DROP TRIGGER IF EXISTS analytics_on_hcp_update",
    "DELETE FROM analytics_contentdaily",
    "DELETE FROM analytics_segmentdaily",
]


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_rollups"),
        ("affinity", "0007_hcp_microsegment"),
    ]

    operations = [migrations.RunPython(up, down)]
