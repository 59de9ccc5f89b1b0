"""The content change log, written by a trigger on library_moduleversion.

The trigger runs inside the transaction that approves, supersedes, withdraws,
expires or deletes a version (or moves an approved version's expiry date), so
a change row commits with the state it describes and never for a rolled-back
one, whichever code path made it. Every version approved when this migration
runs is logged as an approval (first in the feed), so an engine replaying
from the start reaches today's approved set.

Ids are a cursor only if they are drawn in commit order: a transaction that
draws id 10 and commits after the one that drew 11 would be skipped by a
reader that had already moved past 11. So on PostgreSQL the trigger takes a
transaction-level advisory lock before drawing the id, on every write that the
delivery generation trigger of 0002 bumps for and just before it (triggers
fire in name order): that trigger's row lock already serialises these
transactions, so the advisory lock adds no wait and the two are always taken
in the same order. SQLite has one writer at a time.
"""

from django.db import migrations, models

CHANGE_COLUMNS = "kind, module_id, version_id, number, changed_at"
# pg_advisory_xact_lock key: "change" in ASCII.
CHANGE_LOCK = 0x6368616E6765

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION delivery_log_content_change() RETURNS trigger AS $$
DECLARE
    change_kind text;
    v record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'approved' THEN RETURN NULL; END IF;
        change_kind := 'deleted';
        v := OLD;
    ELSIF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'approved' THEN RETURN NULL; END IF;
        change_kind := 'approved';
        v := NEW;
    ELSE
        IF OLD.status <> 'approved' AND NEW.status <> 'approved' THEN RETURN NULL; END IF;
        v := NEW;
        IF NEW.status <> 'approved' THEN
            change_kind := NEW.status;
        ELSIF OLD.status <> 'approved' OR OLD.expires_on IS DISTINCT FROM NEW.expires_on THEN
            change_kind := 'approved';
        END IF;
    END IF;
    -- Taken on every write the generation trigger (0002) bumps for, and before it (the
    -- triggers fire in name order), so the two locks are always taken in one order.
    -- Held until this transaction ends: the next writer draws its id only after this
    -- one has committed and is visible, so ids are drawn in commit order.
    PERFORM pg_advisory_xact_lock({CHANGE_LOCK});
    IF change_kind IS NOT NULL THEN
        INSERT INTO delivery_contentchange ({CHANGE_COLUMNS})
        VALUES (change_kind, v.module_id, v.id, v.number, now());
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER delivery_content_change_on_version
    AFTER INSERT OR UPDATE OR DELETE ON library_moduleversion
    FOR EACH ROW EXECUTE FUNCTION delivery_log_content_change();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS delivery_content_change_on_version ON library_moduleversion;
DROP FUNCTION IF EXISTS delivery_log_content_change();
"""

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _sqlite_insert(kind: str, row: str) -> str:
    return (
        f"INSERT INTO delivery_contentchange ({CHANGE_COLUMNS}) VALUES "
        f"({kind}, {row}.module_id, {row}.id, {row}.number, {_SQLITE_NOW})"
    )


SQLITE_UP = [
    f"""CREATE TRIGGER delivery_change_on_insert AFTER INSERT ON library_moduleversion
        WHEN NEW.status = 'approved' BEGIN {_sqlite_insert("'approved'", "NEW")}; END""",
    f"""CREATE TRIGGER delivery_change_on_approve AFTER UPDATE ON library_moduleversion
        WHEN NEW.status = 'approved'
             AND (OLD.status <> 'approved' OR OLD.expires_on IS NOT NEW.expires_on)
        BEGIN {_sqlite_insert("'approved'", "NEW")}; END""",
    f"""CREATE TRIGGER delivery_change_on_leave AFTER UPDATE ON library_moduleversion
        WHEN OLD.status = 'approved' AND NEW.status <> 'approved'
        BEGIN {_sqlite_insert("NEW.status", "NEW")}; END""",
    f"""CREATE TRIGGER delivery_change_on_delete AFTER DELETE ON library_moduleversion
        WHEN OLD.status = 'approved' BEGIN {_sqlite_insert("'deleted'", "OLD")}; END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS delivery_change_on_insert",
    "DROP TRIGGER IF EXISTS delivery_change_on_approve",
    "DROP TRIGGER IF EXISTS delivery_change_on_leave",
    "DROP TRIGGER IF EXISTS delivery_change_on_delete",
]

BACKFILL = (
    f"INSERT INTO delivery_contentchange ({CHANGE_COLUMNS}) "
    "SELECT 'approved', module_id, id, number, COALESCE(approved_at, status_changed_at) "
    "FROM library_moduleversion WHERE status = 'approved' ORDER BY id"
)


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)
    schema_editor.execute(BACKFILL)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0006_idempotent_requests"),
        ("library", "0003_module_latest"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContentChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "kind",
                    models.CharField(
                        help_text="'approved', or the status the version left approval for.",
                        max_length=16,
                    ),
                ),
                ("module_id", models.BigIntegerField()),
                ("version_id", models.BigIntegerField()),
                ("number", models.PositiveIntegerField()),
                ("changed_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(up, down),
    ]
