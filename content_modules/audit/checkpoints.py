"""Signed chain checkpoints kept outside the database (AUDIT_CHECKPOINT_DIR).

A checkpoint is a small JSON file naming one entry of the chain (its sequence
number and hash), signed with an HMAC of a key derived from AUDIT_HMAC_KEY. Files
are created exclusively and never rewritten: one file per checkpointed sequence
number, mode 0444. Put the folder on storage the database administrators cannot
rewrite (another host, an object store with object lock, ``chattr +a``): the
checkpoints are what tell a trail cut back to an earlier, self-consistent state
(entries deleted from the end, the head rolled back) from an honest one.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .models import AuditEntry
from .services import audit_verify_since, checkpoint_key

logger = logging.getLogger(__name__)

FORMAT = "contentapp-audit-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint file."""

    seq: int
    entry_hash: str
    written_at: str
    name: str


@dataclass
class LoadResult:
    ok: bool
    checkpoints: list[Checkpoint] = field(default_factory=list)
    reason: str = ""


@dataclass
class WriteResult:
    """What one checkpoint run did."""

    written: Checkpoint | None
    path: Path | None
    reason: str


class ChainBrokenError(Exception):
    """The entries since the last checkpoint do not verify: nothing is signed."""


def checkpoint_dir(directory=None) -> Path:
    value = directory or settings.AUDIT_CHECKPOINT_DIR
    if not value:
        raise ImproperlyConfigured(
            "AUDIT_CHECKPOINT_DIR is not set: the folder for signed audit chain checkpoints"
        )
    return Path(value)


def _signature(body: dict) -> str:
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(checkpoint_key(), encoded, sha256).hexdigest()


def _body(seq: int, entry_hash: str, written_at: str) -> dict:
    return {"format": FORMAT, "seq": seq, "entry_hash": entry_hash, "written_at": written_at}


def _file_name(seq: int) -> str:
    return f"audit-checkpoint-{seq:012d}.json"


def checkpoints_load(directory=None) -> LoadResult:
    """Read and check the signature of every checkpoint file in the folder."""
    folder = checkpoint_dir(directory)
    if not folder.is_dir():
        return LoadResult(False, reason=f"checkpoint folder {folder} does not exist")
    found = []
    for path in sorted(folder.glob("audit-checkpoint-*.json")):
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            body = _body(int(stored["seq"]), str(stored["entry_hash"]), str(stored["written_at"]))
            signature = str(stored["signature"])
        except (OSError, ValueError, KeyError, TypeError):
            return LoadResult(False, reason=f"checkpoint {path.name} is unreadable")
        if stored.get("format") != FORMAT or not hmac.compare_digest(_signature(body), signature):
            return LoadResult(
                False,
                reason=(
                    f"checkpoint {path.name} is not signed with this AUDIT_HMAC_KEY "
                    "(forged or altered)"
                ),
            )
        if path.name != _file_name(body["seq"]):
            return LoadResult(False, reason=f"checkpoint {path.name} names entry #{body['seq']}")
        found.append(Checkpoint(body["seq"], body["entry_hash"], body["written_at"], path.name))
    return LoadResult(True, found)


def _write_once(path: Path, content: bytes) -> None:
    """Create the file exclusively (never overwrite), flush it to disk, make it read-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def checkpoint_write(*, directory=None) -> WriteResult:
    """Sign the chain's current last entry into a new checkpoint file, if it moved.

    Only the entries since the latest checkpoint are verified first (cheap, and
    the checkpoint before them vouches for the rest): a chain that no longer
    verifies is never signed over; ``ChainBrokenError`` says why.
    """
    folder = checkpoint_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    loaded = checkpoints_load(folder)
    if not loaded.ok:
        raise ChainBrokenError(loaded.reason)
    latest = max(loaded.checkpoints, key=lambda cp: cp.seq, default=None)
    last = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
    if last is None:
        return WriteResult(None, None, "the audit trail is empty: nothing to checkpoint")
    if latest is not None and latest.seq >= last:
        if latest.seq > last:
            raise ChainBrokenError(
                f"the trail ends at #{last} but checkpoint {latest.name} records #{latest.seq}"
            )
        return WriteResult(None, None, f"checkpoint {latest.name} is up to date (#{last})")
    result = (
        audit_verify_since(latest.seq, latest.entry_hash) if latest else audit_verify_since(0, "")
    )
    if not result.ok:
        raise ChainBrokenError(f"entry #{result.broken_seq}: {result.reason}")
    written_at = timezone.now().isoformat(timespec="seconds")
    body = _body(result.last_seq, result.last_hash, written_at)
    stored = {**body, "signature": _signature(body)}
    path = folder / _file_name(result.last_seq)
    try:
        _write_once(path, (json.dumps(stored, sort_keys=True, indent=1) + "\n").encode("utf-8"))
    except FileExistsError:
        # Another run signed the same entry meanwhile; its file stands.
        return WriteResult(None, path, f"checkpoint {path.name} already exists")
    checkpoint = Checkpoint(result.last_seq, result.last_hash, written_at, path.name)
    logger.info("audit checkpoint written: #%s in %s", checkpoint.seq, path)
    return WriteResult(checkpoint, path, f"checkpoint {path.name} written (#{checkpoint.seq})")
