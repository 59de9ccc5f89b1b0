"""The content change feed: approvals and tombstones since a cursor, exactly once each.

An engine keeps an exact local copy of the approved content by replaying
``GET /api/v1/content/changes?changed_since=<cursor>`` (``0`` the first
time) and storing the ``cursor`` each page answers. Rules for the engine:

* ``approved``: store ``content`` under ``module`` (replacing what it held
  for that module; a module has at most one approved version).
* any other type (``withdrawn``, ``expired``, ``superseded``, ``deleted``, or
  another status a version left approval for): a tombstone; drop the module's
  entry if it holds that ``version_id`` (a later approval may already have
  replaced it).
* also stop serving an entry past its ``approval_expires_on`` without waiting
  for the ``expired`` tombstone (the daily expiry job writes it; delivery
  compares dates with today, as the content list does).

Why it is exact. The rows come from ``ContentChange``, written by a trigger
in the transaction that changes the version, so a rolled-back change is never
seen and a committed one always is. An id from a sequence alone would not be a
safe cursor (nor would a timestamp): a transaction can draw id 10, commit after
the one that drew 11, and a reader already past 11 never sees 10. So the
trigger takes a transaction-level lock before it draws the id (migration
0007): the next writer draws its id only once this one has committed, and ids
become visible in id order. An approval whose version is no longer approved
(withdrawn, superseded or expired since) is passed over, its tombstone
following later in the feed, so the engine never holds content it must not
serve even for one page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from content_modules.errors import InvalidInput

from . import catalogue as catalogue_mod
from .catalogue import Candidate
from .models import ContentChange

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_CURSOR = re.compile(r"\A[0-9]{1,19}\Z")
_MAX_BIGINT = 2**63 - 1


@dataclass
class Change:
    kind: str
    module_id: int
    version_id: int
    number: int
    changed_at: object
    candidate: Candidate | None  # for an approval: what to store


@dataclass
class ChangePage:
    changes: list[Change]
    cursor: str
    has_more: bool


def parse_cursor(value: str | None) -> int:
    """The last change id a cursor stands for; ``0`` is the start."""
    if value is None or not _CURSOR.fullmatch(value) or int(value) > _MAX_BIGINT:
        raise InvalidInput(
            "A cursor from an earlier answer ('cursor'), or 0 for the start.",
            field="changed_since",
        )
    return int(value)


def changes_since(cursor: str | None, limit: int = DEFAULT_LIMIT) -> ChangePage:
    """The changes after ``cursor``, oldest first, at most ``limit``."""
    position = parse_cursor(cursor)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"Between 1 and {MAX_LIMIT}.", field="limit")
    rows = list(
        ContentChange.objects.filter(id__gt=position)
        .order_by("id")
        .values_list("id", "kind", "module_id", "version_id", "number", "changed_at")[: limit + 1]
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    # Read after the rows: at least as new as they are, so an approval withdrawn since
    # is passed over (its tombstone is later in the feed).
    cat = catalogue_mod.current()
    out: list[Change] = []
    for change_id, kind, module_id, version_id, number, changed_at in rows:
        position = change_id
        candidate = None
        if kind == "approved":
            # Approved now, whatever its date: a moved expiry date is an approval too, and
            # the engine compares approval_expires_on with today as delivery does.
            i = cat.by_module.get(module_id)
            candidate = cat.candidates[i] if i is not None else None
            if candidate is None or candidate.version_id != version_id:
                continue
        out.append(Change(kind, module_id, version_id, number, changed_at, candidate))
    return ChangePage(out, str(position), has_more)
