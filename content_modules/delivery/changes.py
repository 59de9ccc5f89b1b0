"""The content change feed: approvals and tombstones since a cursor.

An engine keeps an exact local copy of the approved content by following
``GET /api/v1/content?changed_since=<cursor>`` (``sync_page`` below, ``0`` the
first time). The rest of this docstring describes the earlier, deprecated form,
``GET /api/v1/content/changes?changed_since=<int>`` (``changes_since``), on which
it is built. Rules for the engine of the deprecated form:

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Max
from django.utils import timezone

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


# --- GET /api/v1/content?changed_since=<cursor>: the content list as a sync feed -----------
#
# The cursor the content list hands out is opaque to the engine; it holds three things:
#
# * ``position``: the last ContentChange id the copy has applied (read before the
#   catalogue, so the copy is at least as new as it).
# * ``expired``: how far date expiries have been tombstoned, a (day, version id) mark:
#   every approved version whose (expires_on, version id) is at or before it has had its
#   tombstone (or was never served). A version passing its date writes nothing to the
#   database until the expiry job runs, so the feed itself looks at the dates: on every
#   page it answers an ``expired`` tombstone for each version approved but past its date
#   beyond the mark, then moves the mark to today. The job's own ``expired`` change
#   follows later (a second tombstone for a version already dropped changes nothing).
# * ``after_module``: while the first, full listing is walked (``changed_since=0``), the
#   last module id answered. That walk is keyset-paginated on the module id, so a change
#   between two pages cannot make an item slip between them (a page number could); what
#   changes during the walk is in the feed after ``position``, read once the walk ends.
#
# Text form: ``<position>.<YYYYMMDD>.<version id>`` in the feed, with ``.<module id>``
# appended during the listing walk. A bare integer (the cursor of the deprecated
# /content/changes feed) is accepted as a position whose dates were never checked.

_SYNC_CURSOR = re.compile(
    r"\A(?P<position>[0-9]{1,19})"
    r"(?:\.(?P<day>[0-9]{8})\.(?P<version>[0-9]{1,19})(?:\.(?P<after>[0-9]{1,19}))?)?\Z"
)
_CURSOR_HELP = (
    "Use 0 for a full listing, or the next_cursor of an earlier answer "
    "(from the content list or a changed_since page)."
)


@dataclass(frozen=True)
class SyncCursor:
    position: int
    expired_day: date  # tombstoned: every version expiring before this day ...
    expired_version: int  # ... and those expiring on it with an id up to this one
    after_module: int | None  # listing walk: last module answered (None: in the feed)

    def encode(self) -> str:
        day = self.expired_day
        text = f"{self.position}.{day.year:04d}{day.month:02d}{day.day:02d}.{self.expired_version}"
        return text if self.after_module is None else f"{text}.{self.after_module}"

    def is_done(self, candidate: Candidate) -> bool:
        """Has this version's date expiry been tombstoned (or was it never served)?"""
        expires = candidate.expires_on
        if expires is None:
            return True
        return (expires, candidate.version_id) <= (self.expired_day, self.expired_version)


def parse_sync_cursor(value: str | None, today: date) -> SyncCursor:
    """The cursor of ``changed_since``; ``0`` starts a full listing as of ``today``."""
    match = _SYNC_CURSOR.fullmatch(value or "")
    if match is None:
        raise InvalidInput(_CURSOR_HELP, field="changed_since")
    numbers = [match[k] for k in ("position", "version", "after") if match[k] is not None]
    if any(int(n) > _MAX_BIGINT for n in numbers):
        raise InvalidInput(_CURSOR_HELP, field="changed_since")
    position = int(match["position"])
    if match["day"] is None:
        if position == 0:
            return SyncCursor(last_change_id(), today, 0, 0)
        return SyncCursor(position, date.min, 0, None)  # a /content/changes cursor
    try:
        day = datetime.strptime(match["day"], "%Y%m%d").date()
    except ValueError:
        raise InvalidInput(_CURSOR_HELP, field="changed_since") from None
    after = int(match["after"]) if match["after"] is not None else None
    return SyncCursor(position, day, int(match["version"]), after)


def last_change_id() -> int:
    return ContentChange.objects.aggregate(last=Max("id"))["last"] or 0


def start_cursor(today: date) -> str:
    """A cursor to follow a full listing read after this call (every date already checked)."""
    return SyncCursor(last_change_id(), today, 0, None).encode()


@dataclass
class Tombstone:
    status: str
    module_id: int
    version_id: int
    number: int
    changed_at: object


@dataclass
class SyncPage:
    approvals: list[Candidate]
    tombstones: list[Tombstone]
    cursor: str
    has_more: bool
    count: int  # the list's size in the catalogue this page was read from


def _expired_at(candidate: Candidate) -> datetime:
    """The moment a version's date ran out: the start of the day after it (local time)."""
    assert candidate.expires_on is not None
    day = candidate.expires_on + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time.min))


def sync_page(
    cursor: str | None,
    limit: int,
    *,
    listing: Callable[[catalogue_mod.Catalogue], list[Candidate]],
    today: date,
) -> SyncPage:
    """One page of ``changed_since``: approvals (as ``listing`` filters them) and tombstones.

    Apply a page's tombstones first (drop a module's entry if it holds that version),
    then its approvals (store under the module); then ask again with ``cursor``, at once
    while ``has_more``. Tombstones are not filtered: one for a version the copy does not
    hold changes nothing.
    """
    at = parse_sync_cursor(cursor, today)
    if at.after_module is not None:
        return _listing_page(at, limit, listing=listing, today=today)

    rows = list(
        ContentChange.objects.filter(id__gt=at.position)
        .order_by("id")
        .values_list("id", "kind", "module_id", "version_id", "number", "changed_at")[: limit + 1]
    )
    # Read after the rows, as in changes_since: at least as new as they are.
    cat = catalogue_mod.current()
    listed = listing(cat)
    wanted = {c.version_id for c in listed}

    tombstones: dict[int, Tombstone] = {}
    due = sorted(
        (c for c in cat.candidates if not at.is_done(c) and not c.is_approved_on(today)),
        key=lambda c: (c.expires_on, c.version_id),
    )
    for c in due[:limit]:
        tombstones[c.version_id] = Tombstone(
            "expired", c.module_id, c.version_id, c.number, _expired_at(c)
        )
    if len(due) > limit:
        last = due[limit - 1]
        assert last.expires_on is not None
        mark = SyncCursor(at.position, last.expires_on, last.version_id, None)
        return SyncPage([], list(tombstones.values()), mark.encode(), True, len(listed))

    budget = limit - len(tombstones)
    position = at.position
    approvals: dict[int, Candidate] = {}
    has_more = len(rows) > budget
    for change_id, kind, module_id, version_id, number, changed_at in rows[:budget]:
        position = change_id
        if kind != "approved":
            tombstones.setdefault(
                version_id, Tombstone(kind, module_id, version_id, number, changed_at)
            )
            continue
        i = cat.by_module.get(module_id)
        candidate = cat.candidates[i] if i is not None else None
        if candidate is None or candidate.version_id != version_id:
            continue  # left approval since: its tombstone follows in the feed
        if not candidate.is_approved_on(today):
            # Its date was moved into the past: a date expiry the mark is already beyond.
            tombstones.setdefault(
                version_id, Tombstone("expired", module_id, version_id, number, changed_at)
            )
        elif version_id in wanted:
            approvals.pop(module_id, None)
            approvals[module_id] = candidate
    if budget == 0:
        has_more = ContentChange.objects.filter(id__gt=position).exists()
    after = SyncCursor(position, today, 0, None)
    return SyncPage(
        list(approvals.values()), list(tombstones.values()), after.encode(), has_more, len(listed)
    )


def _listing_page(
    at: SyncCursor,
    limit: int,
    *,
    listing: Callable[[catalogue_mod.Catalogue], list[Candidate]],
    today: date,
) -> SyncPage:
    """The full listing, by module id after ``at.after_module``; then the feed from its start."""
    listed = listing(catalogue_mod.current())
    items = [c for c in listed if c.module_id > (at.after_module or 0)]
    page = items[:limit]
    if len(items) > limit:
        walk = SyncCursor(at.position, at.expired_day, at.expired_version, page[-1].module_id)
        return SyncPage(page, [], walk.encode(), True, len(listed))
    feed = SyncCursor(at.position, at.expired_day, at.expired_version, None)
    # More waits if anything changed during the walk or a date ran out since it began.
    has_more = at.expired_day < today or ContentChange.objects.filter(id__gt=at.position).exists()
    return SyncPage(page, [], feed.encode(), has_more, len(listed))
