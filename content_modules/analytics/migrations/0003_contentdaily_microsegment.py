"""``analytics_contentdaily`` gains the HCP's current microsegment.

Before, a microsegment filter (on any grouping) and ``by=segment`` with a brand or
market filter were answered from the events joined to their HCPs: 8.4 s and 2.6 s
at 2,000,000 events. With the microsegment in the key every answer is read from a
rollup. The triggers of 0002 are redefined so that:

* an inserted or deleted event changes the row of its HCP's current microsegment
  (the HCP rows are read ``FOR SHARE``, as the segment upsert already did);
* a relabelling of HCPs moves their counts between microsegments in both tables,
  unless the transaction set ``contentapp.rollups_deferred`` and rebuilds them
  itself (``analytics.rollups.deferred``: what an engagement fit does).

The table is then rebuilt from the events, inside this migration's transaction.
"""

from importlib import import_module

from django.db import migrations, models

_0002 = import_module("content_modules.analytics.migrations.0002_rollup_triggers")
COUNTED = _0002.COUNTED
PG_DAY = _0002.PG_DAY
PG_COUNTS = _0002.PG_COUNTS
_row = _0002._row
_pg_segment_upsert = _0002._pg_segment_upsert
_sqlite_segment = _0002._sqlite_segment
SQLITE_DROP_ZEROS = _0002.SQLITE_DROP_ZEROS
SQLITE_RELABEL = _0002.SQLITE_RELABEL

KEY = "day, module_id, version_key, channel, microsegment"
SET_SUMS = """
       SET deliveries = r.deliveries + EXCLUDED.deliveries,
           opens = r.opens + EXCLUDED.opens,
           clicks = r.clicks + EXCLUDED.clicks"""

# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_content_upsert(source: str, sign: str) -> str:
    return f"""
    INSERT INTO analytics_contentdaily AS r
        ({KEY}, deliveries, opens, clicks)
    SELECT {PG_DAY}, e.module_id, COALESCE(e.version_id, 0), e.channel, h.microsegment,
           {sign}count(*) FILTER (WHERE e.type = 'delivered'),
           {sign}count(*) FILTER (WHERE e.type = 'opened'),
           {sign}count(*) FILTER (WHERE e.type = 'clicked')
      FROM {source} e
      JOIN (SELECT id, microsegment FROM affinity_hcp
             WHERE id IN (SELECT s.hcp_id FROM {source} s WHERE s.type IN {COUNTED})
             ORDER BY id FOR SHARE) h ON h.id = e.hcp_id
     WHERE e.type IN {COUNTED}
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE {SET_SUMS};
    """


def _pg_drop_zeros(source: str) -> str:
    """Remove the rows a subtraction from ``source`` brought to zero (by key, not a scan)."""
    return f"""
    DELETE FROM analytics_contentdaily r
     USING (SELECT DISTINCT {PG_DAY} AS day, e.module_id, COALESCE(e.version_id, 0) AS version_key,
                   e.channel, h.microsegment
              FROM {source} e JOIN affinity_hcp h ON h.id = e.hcp_id
             WHERE e.type IN {COUNTED}) k
     WHERE r.day = k.day AND r.module_id = k.module_id AND r.version_key = k.version_key
       AND r.channel = k.channel AND r.microsegment = k.microsegment
       AND r.deliveries = 0 AND r.opens = 0 AND r.clicks = 0;
    DELETE FROM analytics_segmentdaily
     WHERE deliveries = 0 AND opens = 0 AND clicks = 0;
    """


MOVED = """
    moved AS (
        SELECT o.id, o.microsegment AS old_segment, n.microsegment AS new_segment
          FROM old_hcps o JOIN new_hcps n ON n.id = o.id
         WHERE o.microsegment IS DISTINCT FROM n.microsegment
    )"""

POSTGRES_UP = f"""
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
    -- An engagement fit relabels most HCPs at once and rebuilds both rollups itself
    -- (analytics.rollups.deferred): moving ~2 ms of rows per HCP would cost more.
    IF current_setting('contentapp.rollups_deferred', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM old_hcps o JOIN new_hcps n ON n.id = o.id
                    WHERE o.microsegment IS DISTINCT FROM n.microsegment) THEN
        RETURN NULL;
    END IF;
    WITH {MOVED}, counts AS (
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
    ON CONFLICT (day, microsegment, channel) DO UPDATE {SET_SUMS};
    DELETE FROM analytics_segmentdaily WHERE deliveries = 0 AND opens = 0 AND clicks = 0;

    WITH {MOVED}, counts AS (
        SELECT {PG_DAY} AS day, e.module_id, COALESCE(e.version_id, 0) AS version_key,
               e.channel, m.old_segment, m.new_segment,
               count(*) FILTER (WHERE e.type = 'delivered') AS d,
               count(*) FILTER (WHERE e.type = 'opened') AS o,
               count(*) FILTER (WHERE e.type = 'clicked') AS c
          FROM affinity_engagementevent e JOIN moved m ON e.hcp_id = m.id
         WHERE e.type IN {COUNTED}
         GROUP BY 1, 2, 3, 4, 5, 6
    ), deltas AS (
        SELECT day, module_id, version_key, channel, old_segment AS microsegment,
               -d AS d, -o AS o, -c AS c FROM counts
        UNION ALL
        SELECT day, module_id, version_key, channel, new_segment, d, o, c FROM counts
    )
    INSERT INTO analytics_contentdaily AS r ({KEY}, deliveries, opens, clicks)
    SELECT day, module_id, version_key, channel, microsegment, sum(d), sum(o), sum(c)
      FROM deltas GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({KEY}) DO UPDATE {SET_SUMS};

    WITH {MOVED}
    DELETE FROM analytics_contentdaily r
     USING (SELECT DISTINCT {PG_DAY} AS day, e.module_id,
                   COALESCE(e.version_id, 0) AS version_key, e.channel, m.old_segment
              FROM affinity_engagementevent e JOIN moved m ON e.hcp_id = m.id
             WHERE e.type IN {COUNTED}) k
     WHERE r.day = k.day AND r.module_id = k.module_id AND r.version_key = k.version_key
       AND r.channel = k.channel AND r.microsegment = k.old_segment
       AND r.deliveries = 0 AND r.opens = 0 AND r.clicks = 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DELETE FROM analytics_contentdaily;
INSERT INTO analytics_contentdaily ({KEY}, deliveries, opens, clicks)
SELECT {PG_DAY}, e.module_id, COALESCE(e.version_id, 0), e.channel, h.microsegment, {PG_COUNTS}
  FROM affinity_engagementevent e JOIN affinity_hcp h ON h.id = e.hcp_id
 WHERE e.type IN {COUNTED}
 GROUP BY 1, 2, 3, 4, 5;
ANALYZE analytics_contentdaily;
"""

# Back to 0002's functions; the table is emptied here and refilled once the old key is back.
POSTGRES_DOWN = f"""
CREATE OR REPLACE FUNCTION analytics_events_inserted() RETURNS trigger AS $$
BEGIN
    {_0002._pg_content_upsert("new_events", "")}
    {_pg_segment_upsert("new_events", "")}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION analytics_events_deleted() RETURNS trigger AS $$
BEGIN
    {_0002._pg_content_upsert("old_events", "-")}
    {_pg_segment_upsert("old_events", "-")}
    {_0002._pg_drop_zeros("old_events")}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION analytics_event_updated() RETURNS trigger AS $$
BEGIN
    {_0002._pg_content_upsert(_row("OLD"), "-")}
    {_pg_segment_upsert(_row("OLD"), "-")}
    {_0002._pg_content_upsert(_row("NEW"), "")}
    {_pg_segment_upsert(_row("NEW"), "")}
    {_0002._pg_drop_zeros(_row("OLD"))}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
# The segment part of the relabel function is 0002's, so its body can be taken whole.
POSTGRES_DOWN += _0002.POSTGRES_UP[
    _0002.POSTGRES_UP.index(
        "CREATE OR REPLACE FUNCTION analytics_hcps_relabelled()"
    ) : _0002.POSTGRES_UP.index("CREATE TRIGGER analytics_on_event_insert")
]
POSTGRES_DOWN += "DELETE FROM analytics_contentdaily;"
# 0002's backfill, once the old key is back.
_BACKFILL_AT = _0002.POSTGRES_UP.rindex("INSERT INTO analytics_contentdaily (day")
POSTGRES_BACKFILL_0002 = _0002.POSTGRES_UP[_BACKFILL_AT:].split(";")[0]

# --- SQLite -------------------------------------------------------------------------------


def _sqlite_content(row: str, sign: str) -> str:
    return f"""INSERT INTO analytics_contentdaily ({KEY}, deliveries, opens, clicks)
        SELECT date({row}.occurred_at), {row}.module_id, COALESCE({row}.version_id, 0),
               {row}.channel, h.microsegment, {sign}({row}.type = 'delivered'),
               {sign}({row}.type = 'opened'), {sign}({row}.type = 'clicked')
          FROM affinity_hcp h
         WHERE h.id = {row}.hcp_id AND {row}.type IN {COUNTED}
        ON CONFLICT ({KEY}) DO UPDATE
           SET deliveries = deliveries + excluded.deliveries,
               opens = opens + excluded.opens, clicks = clicks + excluded.clicks;"""


SQLITE_RELABEL_CONTENT = f"""INSERT INTO analytics_contentdaily ({KEY}, deliveries, opens, clicks)
        SELECT date(e.occurred_at), e.module_id, COALESCE(e.version_id, 0), e.channel,
               {{segment}}, {{sign}}sum(e.type = 'delivered'), {{sign}}sum(e.type = 'opened'),
               {{sign}}sum(e.type = 'clicked')
          FROM affinity_engagementevent e
         WHERE e.hcp_id = NEW.id AND e.type IN {COUNTED}
         GROUP BY 1, 2, 3, 4
        ON CONFLICT ({KEY}) DO UPDATE
           SET deliveries = deliveries + excluded.deliveries,
               opens = opens + excluded.opens, clicks = clicks + excluded.clicks;"""

TRIGGERS = (
    "analytics_on_event_insert",
    "analytics_on_event_delete",
    "analytics_on_event_update",
    "analytics_on_hcp_update",
)
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]

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
              {SQLITE_RELABEL_CONTENT.format(segment="OLD.microsegment", sign="-")}
              {SQLITE_RELABEL_CONTENT.format(segment="NEW.microsegment", sign="")}
              {SQLITE_DROP_ZEROS} END""",
    "DELETE FROM analytics_contentdaily",
    f"""INSERT INTO analytics_contentdaily ({KEY}, deliveries, opens, clicks)
        SELECT date(e.occurred_at), e.module_id, COALESCE(e.version_id, 0), e.channel,
               h.microsegment, sum(e.type = 'delivered'), sum(e.type = 'opened'),
               sum(e.type = 'clicked')
          FROM affinity_engagementevent e JOIN affinity_hcp h ON h.id = e.hcp_id
         WHERE e.type IN {COUNTED} GROUP BY 1, 2, 3, 4, 5""",
]


def drop_sqlite_triggers(apps, schema_editor):
    """SQLite rebuilds the table to change its key: no trigger may fire meanwhile."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


def restore_0002(apps, schema_editor):
    """Reversal, last step: the old key is back; 0002's triggers and counts with it."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKFILL_0002)
    elif vendor == "sqlite":
        for statement in _0002.SQLITE_UP[:5]:
            schema_editor.execute(statement)


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def down(apps, schema_editor):
    """Reversal, first step: 0002's functions back, the table emptied for the old key."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)
        schema_editor.execute("DELETE FROM analytics_contentdaily")


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_rollup_triggers"),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, restore_0002),
        migrations.RemoveConstraint(model_name="contentdaily", name="contentdaily_key"),
        migrations.AddField(
            model_name="contentdaily",
            name="microsegment",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddConstraint(
            model_name="contentdaily",
            constraint=models.UniqueConstraint(
                fields=("day", "module", "version_key", "channel", "microsegment"),
                name="contentdaily_segment_key",
            ),
        ),
        migrations.RunPython(up, down),
    ]
