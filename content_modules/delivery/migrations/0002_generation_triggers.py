"""Triggers that bump the delivery generation whenever the approved set changes.

They fire inside the transaction that approves, supersedes, withdraws, expires
or deletes a version (``status`` is 'approved' before or after the write), so
the new generation becomes visible exactly when the change does, whichever
code path made it (actions, admin, a queryset update, raw SQL). Each process's
candidate catalogue compares the generation on every request.
"""

from django.db import migrations

# A new value is never one used before, even when the transaction that drew it
# rolled back: PostgreSQL sequences are not transactional; SQLite draws 63 random
# bits. So a catalogue built inside a transaction that rolled back can never
# match a later generation.
PG_BUMP = (
    "UPDATE delivery_deliverygeneration SET value = nextval('delivery_generation_seq') WHERE id = 1"
)
SQLITE_BUMP = "UPDATE delivery_deliverygeneration SET value = abs(random()) WHERE id = 1"

POSTGRES_UP = f"""
CREATE SEQUENCE IF NOT EXISTS delivery_generation_seq;
CREATE OR REPLACE FUNCTION delivery_bump_generation() RETURNS trigger AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.status = 'approved')
       OR (TG_OP = 'DELETE' AND OLD.status = 'approved')
       OR (TG_OP = 'UPDATE' AND (OLD.status = 'approved' OR NEW.status = 'approved')) THEN
        {PG_BUMP};
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER delivery_generation_on_version
    AFTER INSERT OR UPDATE OR DELETE ON library_moduleversion
    FOR EACH ROW EXECUTE FUNCTION delivery_bump_generation();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS delivery_generation_on_version ON library_moduleversion;
DROP FUNCTION IF EXISTS delivery_bump_generation();
DROP SEQUENCE IF EXISTS delivery_generation_seq;
"""

SQLITE_UP = [
    f"""CREATE TRIGGER delivery_generation_on_insert AFTER INSERT ON library_moduleversion
        WHEN NEW.status = 'approved' BEGIN {SQLITE_BUMP}; END""",
    f"""CREATE TRIGGER delivery_generation_on_update AFTER UPDATE ON library_moduleversion
        WHEN OLD.status = 'approved' OR NEW.status = 'approved' BEGIN {SQLITE_BUMP}; END""",
    f"""CREATE TRIGGER delivery_generation_on_delete AFTER DELETE ON library_moduleversion
        WHEN OLD.status = 'approved' BEGIN {SQLITE_BUMP}; END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS delivery_generation_on_insert",
    "DROP TRIGGER IF EXISTS delivery_generation_on_update",
    "DROP TRIGGER IF EXISTS delivery_generation_on_delete",
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
        ("delivery", "0001_initial"),
        ("library", "0003_module_latest"),
    ]

    operations = [migrations.RunPython(up, down)]
