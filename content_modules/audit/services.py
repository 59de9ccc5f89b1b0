"""Writing and verifying the audit trail."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64


def _canonical(value: Any) -> Any:
    """Round-trip through JSON so the hash sees exactly what the database stores."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def compute_hash(
    *,
    seq: int,
    occurred_at: datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    module_id: int | None,
    version_id: int | None,
    data: Any,
    prev_hash: str,
) -> str:
    """The sha256 of an entry's canonical JSON form."""
    payload = {
        "seq": seq,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "module_id": module_id,
        "version_id": version_id,
        "data": _canonical(data),
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _actor_name(actor) -> str:
    if actor is None:
        return "system"
    full = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    username = actor.get_username()
    return f"{full} ({username})" if full else username


def audit_record(
    *,
    actor,
    action: str,
    obj: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    module_id: int | None = None,
    version_id: int | None = None,
    data: dict | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's transaction.

    The chain head row is locked, so concurrent writers queue and each links
    to the entry written just before it: the chain cannot fork.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id if object_id is not None else obj.pk
    data = _canonical(data or {})
    actor_id = actor.pk if actor is not None else None
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        seq = head.last_seq + 1
        # Microsecond precision survives every database backend unchanged.
        occurred_at = timezone.now()
        name = _actor_name(actor)
        entry_hash = compute_hash(
            seq=seq,
            occurred_at=occurred_at,
            actor_id=actor_id,
            actor_name=name,
            action=action,
            object_type=object_type or "",
            object_id=str(object_id or ""),
            module_id=module_id,
            version_id=version_id,
            data=data,
            prev_hash=head.last_hash,
        )
        entry = AuditEntry.objects.create(
            seq=seq,
            occurred_at=occurred_at,
            actor_id=actor_id,
            actor_name=name,
            action=action,
            object_type=object_type or "",
            object_id=str(object_id or ""),
            module_id=module_id,
            version_id=version_id,
            data=data,
            prev_hash=head.last_hash,
            entry_hash=entry_hash,
        )
        head.last_seq = seq
        head.last_hash = entry_hash
        head.save(update_fields=["last_seq", "last_hash"])
    return entry


@dataclass
class VerifyResult:
    """The outcome of walking the chain."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""


def audit_verify() -> VerifyResult:
    """Walk the chain in order and report the first broken link."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                expected_seq,
                f"entry #{expected_seq} is missing (found #{entry.seq})",
            )
        if entry.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, entry.seq, "prev_hash does not match the previous entry's hash"
            )
        recomputed = compute_hash(
            seq=entry.seq,
            occurred_at=entry.occurred_at,
            actor_id=entry.actor_id,
            actor_name=entry.actor_name,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            module_id=entry.module_id,
            version_id=entry.version_id,
            data=entry.data,
            prev_hash=entry.prev_hash,
        )
        if recomputed != entry.entry_hash:
            return VerifyResult(False, checked, entry.seq, "content does not match its hash")
        expected_prev = entry.entry_hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_seq != checked:
        return VerifyResult(
            False,
            checked,
            checked + 1,
            f"chain head says #{head.last_seq} but the trail ends at #{checked}",
        )
    return VerifyResult(True, checked)
