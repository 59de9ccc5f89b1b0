"""Writing and verifying the audit trail.

Each entry's ``entry_hash`` is an HMAC-SHA256, keyed with ``AUDIT_HMAC_KEY`` (a
setting, never stored in the database), over the entry's canonical JSON form,
which includes ``prev_hash``, the previous entry's hash. Someone who can write
to the database but does not hold the key can change, delete or forge rows, and
recompute hashes, but cannot produce hashes that verify.

Entries written before the chain was keyed (plain sha256) stay as they were:
migration ``0003`` appended one keyed ``audit.chain_keyed`` entry after them,
whose keyed hash covers the last plain hash, so the plain prefix is anchored by
the key too (rewriting it breaks the link into the marker). See the README,
"Audit trail tamper evidence".
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .actions import AuditAction
from .models import AuditChainHead, AuditEntry
from .shapes import AuditDataError, data_problems

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# The entry migration 0003 appended after the entries that were written unkeyed.
CHAIN_KEYED_ACTION = AuditAction.AUDIT_CHAIN_KEYED


def _canonical(value: Any) -> Any:
    """Round-trip through JSON so the hash sees exactly what the database stores."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _derive_keys(configured: str, secret_key: str) -> tuple[bytes, bytes]:
    if configured:
        master = configured.encode("utf-8")
    else:
        # Development default: derived from SECRET_KEY (also kept out of the database);
        # `check --deploy` refuses production without a key of its own (checks.py).
        master = hmac.new(
            secret_key.encode("utf-8"), b"contentapp audit chain (default key)", hashlib.sha256
        ).digest()
    chain = hmac.new(master, b"contentapp audit chain v1", hashlib.sha256).digest()
    checkpoint = hmac.new(master, b"contentapp audit checkpoint v1", hashlib.sha256).digest()
    return chain, checkpoint


def chain_key() -> bytes:
    """The key entries are hashed with (from AUDIT_HMAC_KEY, outside the database)."""
    return _derive_keys(settings.AUDIT_HMAC_KEY, settings.SECRET_KEY)[0]


def checkpoint_key() -> bytes:
    """The key checkpoint files are signed with (a second key derived from the same secret)."""
    return _derive_keys(settings.AUDIT_HMAC_KEY, settings.SECRET_KEY)[1]


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
    key: bytes | None,
) -> str:
    """The HMAC-SHA256 with ``key`` of an entry's canonical JSON form (sha256 if key is None).

    ``key=None`` is the scheme of the entries written before the chain was keyed.
    """
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
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
    if key is None:
        return hashlib.sha256(encoded).hexdigest()
    return hmac.new(key, encoded, hashlib.sha256).hexdigest()


def entry_hash_of(entry, *, key: bytes | None) -> str:
    """Recompute a stored entry's hash under ``key`` (None: the unkeyed scheme)."""
    return compute_hash(
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
        key=key,
    )


def _actor_name(actor) -> str:
    if actor is None:
        return "system"
    full = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    username = actor.get_username()
    return f"{full} ({username})" if full else username


def audit_record(
    *,
    actor,
    action: AuditAction,
    obj: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    module_id: int | None = None,
    version_id: int | None = None,
    data: dict | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's transaction.

    The chain head row is locked, so concurrent writers queue and each links
    to the entry written just before it: the chain cannot fork. ``action`` must
    be an ``AuditAction`` (its value is what is stored and hashed), and ``data``
    must match its shape in ``shapes.SHAPES``: with ``AUDIT_DATA_STRICT`` (on
    outside production) a mismatch raises ``AuditDataError`` and nothing is
    written; in production the entry is written as given and the mismatch is
    logged as an error, because a compliance trail must not lose an entry.
    """
    if action not in AuditAction.values:
        raise ValueError(f"Unknown audit action {action!r}: add it to AuditAction first.")
    action = AuditAction(action)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id if object_id is not None else obj.pk
    data = _canonical(data or {})
    problems = data_problems(action, data)
    if problems:
        message = f"audit {action.value} data does not match its shape: " + "; ".join(problems)
        if settings.AUDIT_DATA_STRICT:
            raise AuditDataError(message)
        logger.error(message)
    actor_id = actor.pk if actor is not None else None
    key = chain_key()
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
            key=key,
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
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)


def keyed_from_seq() -> int:
    """The first sequence number whose entry must carry a keyed hash.

    The entries before the ``audit.chain_keyed`` marker were written unkeyed; the
    marker itself and everything after it are keyed. A trail with no marker is
    keyed from #1. The marker only counts if it verifies with the key, so it cannot
    be forged, and deleting it turns every earlier entry into an unkeyed one at a
    place where a keyed one is required.
    """
    marker = (
        AuditEntry.objects.filter(action=CHAIN_KEYED_ACTION)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    return marker or 1


def _walk(
    entries: Iterable[AuditEntry],
    *,
    start_seq: int,
    start_prev: str,
    keyed_from: int,
    checkpoints: dict[int, tuple[str, str]] | None = None,
) -> VerifyResult:
    """Check each entry's sequence, link and hash, in order, from ``start_seq``."""
    key = chain_key()
    expected_seq, expected_prev = start_seq, start_prev
    checked = 0
    last_seq, last_hash = start_seq - 1, start_prev

    def broken(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, checked, seq, reason, last_seq, last_hash)

    for entry in entries:
        if entry.seq != expected_seq:
            return broken(expected_seq, f"entry #{expected_seq} is missing (found #{entry.seq})")
        if entry.prev_hash != expected_prev:
            return broken(entry.seq, "prev_hash does not match the previous entry's hash")
        if entry.seq >= keyed_from:
            if not hmac.compare_digest(entry_hash_of(entry, key=key), entry.entry_hash):
                return broken(
                    entry.seq,
                    "content does not match its keyed hash (changed, or re-hashed without "
                    "the AUDIT_HMAC_KEY it was written with)",
                )
        elif entry_hash_of(entry, key=None) != entry.entry_hash:
            return broken(entry.seq, "content does not match its hash (unkeyed entry)")
        if checkpoints and entry.seq in checkpoints:
            signed_hash, name = checkpoints[entry.seq]
            if not hmac.compare_digest(signed_hash, entry.entry_hash):
                return broken(
                    entry.seq,
                    f"entry #{entry.seq} differs from signed checkpoint {name}: the trail was "
                    f"rewritten at or before #{entry.seq}",
                )
        expected_prev = entry.entry_hash
        expected_seq += 1
        checked += 1
        last_seq, last_hash = entry.seq, entry.entry_hash
    return VerifyResult(True, checked, last_seq=last_seq, last_hash=last_hash)


def _check_head(result: VerifyResult) -> VerifyResult:
    """The head row must exist once there are entries, and point at the last one."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        if result.last_seq:
            return VerifyResult(
                False,
                result.checked,
                result.last_seq,
                f"the chain head row is missing while the trail holds #{result.last_seq}",
                result.last_seq,
                result.last_hash,
            )
        return result
    if head.last_seq > result.last_seq:
        reason = (
            f"chain head says #{head.last_seq} but the trail ends at #{result.last_seq}: "
            "entries were cut from the end"
        )
    elif head.last_seq < result.last_seq:
        reason = (
            f"chain head is behind the trail: it says #{head.last_seq} but the trail "
            f"ends at #{result.last_seq}"
        )
    elif head.last_hash != result.last_hash:
        reason = f"chain head's hash does not match entry #{result.last_seq}"
    else:
        return result
    return VerifyResult(
        False,
        result.checked,
        min(head.last_seq, result.last_seq) + 1,
        reason,
        result.last_seq,
        result.last_hash,
    )


def audit_verify(*, checkpoints: bool = False, checkpoint_dir=None) -> VerifyResult:
    """Walk the chain in order and report the first broken link.

    With ``checkpoints``, every signed checkpoint file in ``AUDIT_CHECKPOINT_DIR``
    (or ``checkpoint_dir``) is also held against the trail: the entry it names
    must still exist with the hash it recorded.
    """
    from . import checkpoints as checkpoint_files

    signed: dict[int, tuple[str, str]] = {}
    if checkpoints:
        loaded = checkpoint_files.checkpoints_load(checkpoint_dir)
        if not loaded.ok:
            return VerifyResult(False, 0, None, loaded.reason)
        signed = {cp.seq: (cp.entry_hash, cp.name) for cp in loaded.checkpoints}
    entries = AuditEntry.objects.order_by("seq").iterator(chunk_size=2000)
    result = _walk(
        entries,
        start_seq=1,
        start_prev=GENESIS_HASH,
        keyed_from=keyed_from_seq(),
        checkpoints=signed,
    )
    if not result.ok:
        return result
    result = _check_head(result)
    if not result.ok or not checkpoints:
        return result
    beyond = [seq for seq in signed if seq > result.last_seq]
    if beyond:
        seq = max(beyond)
        return VerifyResult(
            False,
            result.checked,
            result.last_seq + 1,
            f"the trail ends at #{result.last_seq} but signed checkpoint {signed[seq][1]} "
            f"records entry #{seq}: entries were cut",
            result.last_seq,
            result.last_hash,
        )
    if result.last_seq and not signed:
        return VerifyResult(
            False,
            result.checked,
            None,
            f"no checkpoint in {checkpoint_files.checkpoint_dir(checkpoint_dir)} to hold "
            f"the trail against (#{result.last_seq} entries)",
            result.last_seq,
            result.last_hash,
        )
    result.checkpoints = len(signed)
    covered = max(signed) if signed else 0
    if covered < result.last_seq:
        result.notes.append(
            f"entries #{covered + 1}-#{result.last_seq} are newer than the last checkpoint"
        )
    return result


def audit_verify_since(seq: int, entry_hash: str) -> VerifyResult:
    """Verify only the entries after ``seq``, whose hash a signed checkpoint recorded."""
    anchor = AuditEntry.objects.filter(seq=seq).first() if seq else None
    if seq and (anchor is None or anchor.entry_hash != entry_hash):
        return VerifyResult(
            False, 0, seq, f"entry #{seq} is gone or differs from its signed checkpoint"
        )
    entries = AuditEntry.objects.filter(seq__gt=seq).order_by("seq").iterator(chunk_size=2000)
    return _walk(
        entries,
        start_seq=seq + 1,
        start_prev=entry_hash if seq else GENESIS_HASH,
        keyed_from=keyed_from_seq(),
    )
