"""Content performance: engagement by module, tag, channel, microsegment or week; unused
and fatigued content. The API, the page and the CSV export all call these.

Reads come from the daily rollups (``models.py``), which triggers keep exact, so
answers equal a direct count of the stored events: ``SegmentDaily`` (a few thousand
rows) for ``by=segment`` without a brand or market filter, ``ContentDaily`` (per day,
module version, channel and the HCPs' current microsegment) for everything else.
No answer reads the events table.

Rates are per delivery (``opens / deliveries``, ``clicks / deliveries``); the click
rate carries a Wilson 95% interval. A version with two themes counts in both
theme rows, so theme rows do not add up to the total.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import F, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek

from content_modules.engagement.models import EngagementModel
from content_modules.library.models import Channel, Module, ModuleVersion, Tag

from .models import ContentDaily, SegmentDaily

GROUPINGS = ("module", "message", "theme", "tonality", "format", "channel", "segment", "week")
# Accepted names: microsegment is what HCP.microsegment calls the segment.
SYNONYMS = {"microsegment": "segment"}
Z95 = 1.959963984540054
# Fatigue: the last FATIGUE_RECENT_DAYS against the FATIGUE_BASELINE_DAYS before them.
FATIGUE_RECENT_DAYS = 28
FATIGUE_BASELINE_DAYS = 84
FATIGUE_MIN_DELIVERIES = 50
NO_VERSION = 0


def today_utc() -> date:
    """Days are UTC days, as the rollups count them."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Filters:
    """Optional narrowing of every answer."""

    brand: str = ""
    market: str = ""
    channel: str = ""
    microsegment: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class Row:
    key: str
    label: str
    deliveries: int = 0
    opens: int = 0
    clicks: int = 0
    module_id: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def open_rate(self) -> float | None:
        return self.opens / self.deliveries if self.deliveries else None

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.deliveries if self.deliveries else None

    @property
    def click_rate_ci95(self) -> tuple[float, float] | None:
        return wilson(self.clicks, self.deliveries)

    def as_dict(self) -> dict:
        ci = self.click_rate_ci95
        return {
            "key": self.key,
            "label": self.label,
            "module": self.module_id,
            "deliveries": self.deliveries,
            "opens": self.opens,
            "clicks": self.clicks,
            "open_rate": _round(self.open_rate),
            "click_rate": _round(self.click_rate),
            "click_rate_ci95": [round(ci[0], 6), round(ci[1], 6)] if ci else None,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None without trials.

    More responses than deliveries (possible in raw event data) is read as a rate of 1.
    """
    if n <= 0:
        return None
    x = min(max(successes, 0), n)
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """z of p2 - p1 under the pooled null (0 when undefined)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 0.0
    return (x2 / n2 - x1 / n1) / spread


# --- reading the counts -------------------------------------------------------------------


def _module_ids(filters: Filters) -> QuerySet | None:
    modules = Module.objects.all()
    if filters.brand:
        modules = modules.filter(brand__slug=filters.brand)
    if filters.market:
        modules = modules.filter(market__code=filters.market)
    return modules.values("id") if (filters.brand or filters.market) else None


def _counts(
    field_name: str, *, since: date, until: date, filters: Filters
) -> list[tuple[object, int, int, int]]:
    """(group value, deliveries, opens, clicks) per value of one grouping column.

    ``field_name`` is one of module, version, channel, week, segment.
    """
    modules = _module_ids(filters)
    # The small segment table answers by=segment unless a module filter needs the
    # module column; every other answer, a microsegment filter included, reads
    # ContentDaily, which carries the HCP's current microsegment too.
    use_segments = field_name == "segment" and modules is None
    rollup: QuerySet = (SegmentDaily if use_segments else ContentDaily).objects.filter(
        day__gte=since, day__lte=until
    )
    if filters.channel:
        rollup = rollup.filter(channel=filters.channel)
    if modules is not None:
        rollup = rollup.filter(module_id__in=modules)
    if filters.microsegment:
        rollup = rollup.filter(microsegment=filters.microsegment)
    column = {
        "module": F("module_id"),
        "version": F("version_key"),
        "channel": F("channel"),
        "week": TruncWeek("day"),
        "segment": F("microsegment"),
    }[field_name]
    grouped = rollup.annotate(g=column).values("g")
    totals = grouped.annotate(d=Sum("deliveries"), o=Sum("opens"), c=Sum("clicks"))
    return [(t["g"], int(t["d"] or 0), int(t["o"] or 0), int(t["c"] or 0)) for t in totals]


def _module_titles(ids: Iterable[int]) -> dict[int, str]:
    rows = Module.objects.filter(id__in=list(ids)).values_list("id", "latest__title")
    return {pk: title or f"Module {pk}" for pk, title in rows}


def segment_labels() -> dict[str, str]:
    model = EngagementModel.objects.filter(is_active=True).defer("artifact").first()
    return {s.key: s.label for s in model.segments.all()} if model else {}


def _week_key(value: object) -> str:
    day = value.date() if isinstance(value, datetime) else value
    assert isinstance(day, date)
    return day.isoformat()


def content_performance(
    *, by: str, since: date, until: date, filters: Filters | None = None
) -> list[Row]:
    """One row per value of the grouping, most deliveries first."""
    filters = filters or Filters()
    by = SYNONYMS.get(by, by)
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    rows: dict[str, Row] = {}

    def add(key: str, label: str, d: int, o: int, c: int, module_id: int | None = None) -> None:
        row = rows.setdefault(key, Row(key=key, label=label, module_id=module_id))
        row.deliveries += d
        row.opens += o
        row.clicks += c

    if by == "module":
        counts = _counts("module", since=since, until=until, filters=filters)
        titles = _module_titles(int(g) for g, *_ in counts)  # type: ignore[call-overload]
        for g, d, o, c in counts:
            module_id = int(g)  # type: ignore[call-overload]
            add(str(module_id), titles.get(module_id, f"Module {module_id}"), d, o, c, module_id)
    elif by == "channel":
        labels = dict(Channel.objects.values_list("slug", "label"))
        for g, d, o, c in _counts("channel", since=since, until=until, filters=filters):
            add(str(g), labels.get(str(g), str(g) or "(no channel)"), d, o, c)
    elif by == "week":
        for g, d, o, c in _counts("week", since=since, until=until, filters=filters):
            key = _week_key(g)
            year, week, _ = date.fromisoformat(key).isocalendar()
            add(key, f"{year}-W{week:02d}", d, o, c)
    elif by == "segment":
        labels = segment_labels()
        for g, d, o, c in _counts("segment", since=since, until=until, filters=filters):
            key = str(g or "")
            add(key, labels.get(key, key or "(no microsegment yet)"), d, o, c)
    else:
        _add_tag_rows(by, _counts("version", since=since, until=until, filters=filters), add)
    return sorted(rows.values(), key=lambda r: (-r.deliveries, r.key))


def _add_tag_rows(by: str, counts, add) -> None:
    """Fold per-version counts into tag rows (a version with two themes counts in both)."""
    version_ids = {int(g) for g, *_ in counts if g}
    tags_of: dict[int, list[int]] = defaultdict(list)
    if by == "theme":
        through = ModuleVersion.themes.through.objects.filter(moduleversion_id__in=version_ids)
        for version_id, tag_id in through.values_list("moduleversion_id", "tag_id"):
            tags_of[version_id].append(tag_id)
    else:
        for version_id, tag_id in ModuleVersion.objects.filter(id__in=version_ids).values_list(
            "id", f"{by}_id"
        ):
            if tag_id:
                tags_of[version_id].append(tag_id)
    wanted = {i for ids in tags_of.values() for i in ids}
    tags = {t.id: t for t in Tag.objects.filter(id__in=wanted)}
    for g, d, o, c in counts:
        tag_ids = tags_of.get(int(g or NO_VERSION), [])
        if not tag_ids:
            add("", f"(no {by})", d, o, c)
        for tag_id in tag_ids:
            tag = tags[tag_id]
            add(tag.slug, tag.label, d, o, c)


# --- unused and fatigued ------------------------------------------------------------------


def _approved_modules(filters: Filters) -> QuerySet:
    """Modules with a version approved and unexpired today."""
    approved = ModuleVersion.objects.approved_now(today_utc()).values("module_id")
    modules = Module.objects.filter(id__in=approved)
    if filters.brand:
        modules = modules.filter(brand__slug=filters.brand)
    if filters.market:
        modules = modules.filter(market__code=filters.market)
    return modules


@dataclass
class ModuleUse:
    module_id: int
    title: str
    brand: str
    market: str
    deliveries: int
    last_delivered: date | None


def unused_modules(
    *, days: int, rarely: int = 1, filters: Filters | None = None, until: date | None = None
) -> list[ModuleUse]:
    """Approved modules delivered fewer than ``rarely`` times in the last ``days`` days.

    ``rarely=1`` (the default) is the API.md contract: no delivery at all in the window.
    """
    filters = filters or Filters()
    until = until or today_utc()
    since = until - timedelta(days=days - 1)
    modules = list(
        _approved_modules(filters)
        .select_related("brand", "market", "latest")
        .order_by("id")
        .only("id", "brand__slug", "market__code", "latest__title")
    )
    # One grouped pass over the window (no list of 5,000 ids in the query); the last
    # delivery day is then looked up, by the module index, for the few that qualify.
    daily = ContentDaily.objects.filter(deliveries__gt=0)
    if filters.channel:
        daily = daily.filter(channel=filters.channel)
    in_window = dict(
        daily.filter(day__gte=since, day__lte=until)
        .values("module_id")
        .annotate(d=Sum("deliveries"))
        .values_list("module_id", "d")
    )
    qualifying = [m for m in modules if int(in_window.get(m.id, 0)) < rarely]
    last = dict(
        daily.filter(module_id__in=[m.id for m in qualifying])
        .values("module_id")
        .annotate(last=Max("day"))
        .values_list("module_id", "last")
    )
    found = []
    for module in qualifying:
        title = module.latest.title if module.latest else f"Module {module.id}"
        found.append(
            ModuleUse(
                module.id,
                title,
                module.brand.slug,
                module.market.code,
                int(in_window.get(module.id, 0)),
                last.get(module.id),
            )
        )
    return sorted(found, key=lambda u: (u.deliveries, u.last_delivered or date.min, u.module_id))


@dataclass
class Fatigue:
    module_id: int
    title: str
    brand: str
    market: str
    earlier_deliveries: int
    earlier_clicks: int
    recent_deliveries: int
    recent_clicks: int
    z: float

    @property
    def earlier_rate(self) -> float:
        return self.earlier_clicks / self.earlier_deliveries

    @property
    def recent_rate(self) -> float:
        return self.recent_clicks / self.recent_deliveries


def fatigued_modules(
    *,
    until: date | None = None,
    filters: Filters | None = None,
    recent_days: int = FATIGUE_RECENT_DAYS,
    baseline_days: int = FATIGUE_BASELINE_DAYS,
    min_deliveries: int = FATIGUE_MIN_DELIVERIES,
) -> list[Fatigue]:
    """Approved modules whose click rate fell significantly.

    The last ``recent_days`` (to ``until``) against the ``baseline_days`` before them;
    flagged when both periods have at least ``min_deliveries`` deliveries and a
    two-proportion z-test puts the recent rate below the earlier one at z <= -1.96
    (two-sided 5%). Strongest fall first.
    """
    filters = filters or Filters()
    until = until or today_utc()
    recent_since = until - timedelta(days=recent_days - 1)
    baseline_since = recent_since - timedelta(days=baseline_days)
    modules = {
        m.id: m
        for m in _approved_modules(filters)
        .select_related("brand", "market", "latest")
        .only("id", "brand__slug", "market__code", "latest__title")
    }
    daily = ContentDaily.objects.filter(day__gte=baseline_since, day__lte=until)
    if filters.channel:
        daily = daily.filter(channel=filters.channel)
    recent = Q(day__gte=recent_since)
    totals = daily.values("module_id").annotate(
        ed=Sum("deliveries", filter=~recent),
        ec=Sum("clicks", filter=~recent),
        rd=Sum("deliveries", filter=recent),
        rc=Sum("clicks", filter=recent),
    )
    found = []
    for t in totals:
        if t["module_id"] not in modules:
            continue
        ed, ec, rd, rc = (int(t[k] or 0) for k in ("ed", "ec", "rd", "rc"))
        if ed < min_deliveries or rd < min_deliveries:
            continue
        z = two_proportion_z(min(ec, ed), ed, min(rc, rd), rd)
        if z <= -Z95:
            module = modules[t["module_id"]]
            title = module.latest.title if module.latest else f"Module {module.id}"
            found.append(
                Fatigue(module.id, title, module.brand.slug, module.market.code, ed, ec, rd, rc, z)
            )
    return sorted(found, key=lambda f: (f.z, f.module_id))


# --- CSV ----------------------------------------------------------------------------------

CSV_HEADER = [
    "key",
    "label",
    "module",
    "deliveries",
    "opens",
    "clicks",
    "open_rate",
    "click_rate",
    "click_rate_ci95_low",
    "click_rate_ci95_high",
]


def rows_csv(rows: list[Row]) -> str:
    """The rows as CSV with a header; one line per row, the same figures as the JSON."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        d = row.as_dict()
        ci = d["click_rate_ci95"] or ["", ""]
        writer.writerow(
            [
                _safe(d["key"]),
                _safe(d["label"]),
                d["module"] if d["module"] is not None else "",
                d["deliveries"],
                d["opens"],
                d["clicks"],
                "" if d["open_rate"] is None else d["open_rate"],
                "" if d["click_rate"] is None else d["click_rate"],
                ci[0],
                ci[1],
            ]
        )
    return out.getvalue()


def _safe(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def dicts_csv(items: list[dict], fieldnames: list[str]) -> str:
    """Flat dicts (the unused and fatigued lists) as CSV with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames)
    writer.writeheader()
    for item in items:
        writer.writerow({k: _safe(v) if isinstance(v, str) else v for k, v in item.items()})
    return out.getvalue()
