"""The audit chain becomes keyed (HMAC) and, on PostgreSQL, TRUNCATE and head rewinds are refused.

Entries written before this migration keep their unkeyed sha256 hashes: they are
never rewritten (they are the record as it was). If there are any, one keyed
``audit.chain_keyed`` entry is appended after them; its keyed hash covers the last
unkeyed hash, so rewriting any earlier entry breaks the link into it, and
``verify_audit`` treats entries before it as unkeyed and every later one as keyed.
"""

from django.db import migrations
from django.utils import timezone

CREATE = """
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_auditentry;
CREATE TRIGGER audit_entry_no_truncate
    BEFORE TRUNCATE ON audit_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_auditchainhead;
CREATE TRIGGER audit_head_no_truncate
    BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();

-- The head only moves forward, one entry at a time, onto the entry just appended:
-- it cannot be deleted or rolled back to hide entries cut from the end.
CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_auditchainhead: DELETE refused';
    END IF;
    IF NEW.last_seq <> OLD.last_seq + 1 OR NOT EXISTS (
        SELECT 1 FROM audit_auditentry WHERE seq = NEW.last_seq AND entry_hash = NEW.last_hash
    ) THEN
        RAISE EXCEPTION 'audit_auditchainhead only advances onto the entry just appended';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_auditchainhead;
CREATE TRIGGER audit_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_auditentry;
DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_auditchainhead;
DROP FUNCTION IF EXISTS audit_refuse_truncate();
DROP FUNCTION IF EXISTS audit_head_forward_only();
"""


def triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


def key_the_chain(apps, schema_editor):
    """Append the keyed marker after the entries written unkeyed, if there are any."""
    from content_modules.audit import services

    entry_model = apps.get_model("audit", "AuditEntry")
    head_model = apps.get_model("audit", "AuditChainHead")
    db = schema_editor.connection.alias
    entries = entry_model.objects.using(db)
    last = entries.order_by("-seq").first()
    if last is None or entries.filter(action=services.CHAIN_KEYED_ACTION).exists():
        return
    # Walk the unkeyed chain once, so the marker says whether it verified when it was sealed.
    prev, expected, intact = services.GENESIS_HASH, 1, True
    for entry in entries.order_by("seq").iterator(chunk_size=2000):
        if (
            entry.seq != expected
            or entry.prev_hash != prev
            or services.entry_hash_of(entry, key=None) != entry.entry_hash
        ):
            intact = False
            break
        prev, expected = entry.entry_hash, expected + 1
    head, _ = head_model.objects.using(db).get_or_create(
        pk=1, defaults={"last_seq": last.seq, "last_hash": last.entry_hash}
    )
    data = {
        "unkeyed_through": last.seq,
        "unkeyed_last_hash": last.entry_hash,
        "unkeyed_chain_verified": intact,
        "note": "entries before this one are hashed with plain sha256; from here on HMAC-SHA256",
    }
    seq, occurred_at = head.last_seq + 1, timezone.now()
    fields = {
        "seq": seq,
        "occurred_at": occurred_at,
        "actor_id": None,
        "actor_name": "system",
        "action": services.CHAIN_KEYED_ACTION,
        "object_type": "audit.auditentry",
        "object_id": str(last.seq),
        "module_id": None,
        "version_id": None,
        "data": data,
        "prev_hash": head.last_hash,
    }
    entry_hash = services.compute_hash(**fields, key=services.chain_key())
    entries.create(**fields, entry_hash=entry_hash)
    head.last_seq, head.last_hash = seq, entry_hash
    head.save(update_fields=["last_seq", "last_hash"])


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.RunPython(triggers, drop_triggers),
        migrations.RunPython(key_the_chain, migrations.RunPython.noop),
    ]
