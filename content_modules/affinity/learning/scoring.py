"""Score versions for one HCP with the active model: probabilities, contributions, drivers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from django.db.models import Count, Q

from content_modules.library.models import ModuleVersion

from ..models import HCP, AffinityModel, EngagementEvent
from . import data
from .features import (
    GROUPS,
    READ_DWELL_SECONDS,
    TAG_KINDS,
    ItemTable,
    RowContext,
    base_rates,
    design_matrix,
    knn_lift,
    logit,
    personal_taste,
    popularity_lifts,
    sigmoid,
    single_hcp_statistics,
    specialty_knn_lift,
    text_neighbours,
    value_lifts,
)
from .training import TrainedModel

DRIVER_THRESHOLD = 0.1  # logit units: smaller pushes are not worth a sentence


@dataclass
class Score:
    """The model's view of one (HCP, version) pair."""

    version_id: int
    probability: float
    logit: float
    contributions: dict[str, float]
    drivers: list[str] = field(default_factory=list)
    model_version: str | None = None
    fallback: bool = False


@dataclass
class HcpProfile:
    """One HCP as the model sees it: profile codes and decayed statistics (a single row)."""

    specialty: int
    segment: int
    region: int
    preferred_channel: int
    group: int
    channel: int  # the channel of delivery (-1 unknown)
    stats: dict[str, np.ndarray]  # hcp_statistics for one HCP
    taste: np.ndarray  # (1, dt) float32

    @property
    def group_key(self) -> tuple[int, int, int]:
        return (self.specialty, self.segment, self.group)


NO_EVENTS = {
    "version": np.zeros(0, np.int64),
    "t": np.zeros(0),
    "type": np.zeros(0, np.int8),
    "dwell": np.zeros(0),
}
MAX_GROUP_BASES = 256  # (specialty, segment) caches per process, about 50 KB per 1,000 items
_BASE_CHUNK = 2048


class ServingModel:
    """A loaded model plus the versions met since training (added on demand).

    Scoring one HCP against thousands of candidates is split in two. Most
    columns of the design matrix depend only on the item and the HCP's
    specialty and segment (tag values and their interactions, embeddings,
    group lifts, popularity): their contributions are computed once per
    (specialty, segment) and cached as ``(items, groups)`` arrays. The
    columns that depend on the HCP's own history or request (personal lifts,
    taste, activity, region, channel) are a handful, computed per request
    and added. The sum is exactly ``evaluate``'s answer (a test holds the two
    equal), at a fraction of the cost.
    """

    def __init__(self, row_id, model_version: str, trained: TrainedModel) -> None:
        self.row_id = row_id
        self.model_version = model_version
        self.trained = trained
        self._lock = threading.Lock()
        self._group_index = trained.vocab.index("group")
        self._bases: dict[tuple[int, int, int], np.ndarray] = {}
        self._split = self._personal_split()
        self._tag_cache: ItemTags | None = None

    def item_rows(self, version_ids: Sequence[int]) -> np.ndarray:
        """Rows of the versions in the item table, loading unseen versions from the database."""
        ids = np.asarray(list(version_ids), dtype=np.int64)
        rows = self.trained.items.rows(ids)
        missing = sorted({int(v) for v in ids[rows < 0]})
        if missing:
            with self._lock:
                self._extend(missing)
            rows = self.trained.items.rows(ids)
        return rows

    def _extend(self, version_ids: list[int]) -> None:
        t = self.trained
        still = [v for v in version_ids if t.items.rows(np.array([v]))[0] < 0]
        if not still:
            return
        extra, _ = data.load_items(t.vocab, still, reducer=t.reducer)
        if extra.n == 0:
            return
        items = ItemTable.concat(t.items, extra)
        self.trained = replace(t, items=items, history=extend_history(t, extra))

    def hcp_profile(
        self, hcp: HCP, channel: str | None, now: float, events: dict | None = None
    ) -> HcpProfile:
        """Profile codes and recency-weighted history of one HCP (its events: one query,
        unless the caller already read them with ``data.load_hcp_events``)."""
        t = self.trained
        index = self._vocab_index()
        spec = index["specialty"].get(hcp.specialty, -1)
        seg = index["segment"].get(hcp.segment, -1)
        reg = index["region"].get(hcp.region, -1)
        pref = index["channel"].get(hcp.preferred_channel, -1)
        grp = index["group"].get(f"{hcp.specialty}|{hcp.segment}", -1)
        if events is None:
            events = data.load_events(hcp_id=hcp.pk) if hcp.pk and hcp.pk > 0 else NO_EVENTS
        stats = single_hcp_statistics(
            self.item_rows(events["version"]) if len(events["t"]) else np.zeros(0, np.int64),
            np.asarray(events["t"], dtype=np.float64),
            events["type"],
            np.asarray(events["dwell"], dtype=np.float64),
            self.trained.items,
            self._tags().raw,
            now,
            t.params.half_life_days,
            self._tags().widths,
        )
        taste = personal_taste(
            stats["taste_pos"],
            stats["taste_neg"],
            stats["w_pos"],
            stats["w_neg"],
            t.params.taste_shrink,
        )
        return HcpProfile(
            specialty=spec,
            segment=seg,
            region=reg,
            preferred_channel=pref,
            group=grp,
            channel=index["channel"].get(channel or hcp.preferred_channel or "", -1),
            stats=stats,
            taste=taste.astype(np.float32),
        )

    def _vocab_index(self) -> dict[str, dict[str, int]]:
        """Value -> code of the profile vocabularies (as ``data.hcp_codes`` maps them)."""
        index = self.__dict__.get("_index")
        if index is None:
            vocab = self.trained.vocab
            index = {k: vocab.index(k) for k in ("specialty", "segment", "region", "channel")}
            index["group"] = vocab.index("group")
            self.__dict__["_index"] = index
        return index

    def _group_tags(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """The group's decayed exposures and positives per tag value, kinds side by side."""
        cache = self.__dict__.setdefault("_group_tag_cache", {})
        pair = cache.get(g)
        if pair is None:
            h = self.trained.history
            pair = (
                np.concatenate([h.group_tag_n[k][g] for k in TAG_KINDS])[None, :],
                np.concatenate([h.group_tag_p[k][g] for k in TAG_KINDS])[None, :],
            )
            cache[g] = pair
        return pair

    def broadcast(self, profile: HcpProfile, item_rows: np.ndarray) -> RowContext:
        """The design matrix's per-row context: one HCP against the given items."""
        n = len(item_rows)
        stats = profile.stats

        def rep(value):
            return np.repeat(np.asarray(value), n, axis=0)

        def full(code: int):
            return np.full(n, code, dtype=np.int32)

        return RowContext(
            specialty=full(profile.specialty),
            segment=full(profile.segment),
            region=full(profile.region),
            preferred_channel=full(profile.preferred_channel),
            group=full(profile.group),
            channel=full(profile.channel),
            item=np.asarray(item_rows),
            n=rep(stats["n"]),
            p=rep(stats["p"]),
            tag_n={k: rep(stats[f"tag_n_{k}"]) for k in TAG_KINDS},
            tag_p={k: rep(stats[f"tag_p_{k}"]) for k in TAG_KINDS},
            taste=rep(profile.taste),
        )

    def hcp_context(
        self, hcp: HCP, item_rows: np.ndarray, channel: str | None, now: float
    ) -> RowContext:
        """Profile codes and recency-weighted history of one HCP, broadcast over candidates."""
        return self.broadcast(self.hcp_profile(hcp, channel, now), item_rows)

    def driver_columns(self) -> tuple[list[int], dict[str, int], np.ndarray, np.ndarray]:
        """The columns drivers read: indices, position by name, their means and weights."""
        cached = self.__dict__.get("_driver_columns")
        if cached is None:
            t = self.trained
            names = {name: j for j, name in enumerate(t.layout.names)}
            keys = [f"{k}:personal" for k in TAG_KINDS] + [
                "semantic:personal",
                "item:popularity",
                "item:group_popularity",
                "channel:preferred",
                "hcp:activity",
            ]
            present = [k for k in keys if k in names]
            cols = [names[k] for k in present]
            cached = (cols, {k: i for i, k in enumerate(present)}, t.mu[cols], t.weights[cols])
            self.__dict__["_driver_columns"] = cached
        return cached

    def evaluate(self, ctx: RowContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw features, logits and group contributions for prepared rows."""
        t = self.trained
        X = design_matrix(ctx, t.items, t.history, t.vocab, t.layout, t.params)
        logits, contributions = t.logits_and_contributions(X)
        return X, logits, contributions

    # --- fast scoring: cached group part plus per-request personal part ---------------

    def _personal_split(self) -> dict:
        """The columns a request computes itself: varying per item, or constant per HCP."""
        t = self.trained
        names = {name: j for j, name in enumerate(t.layout.names)}
        varying = [f"{k}:personal" for k in TAG_KINDS] + ["semantic:personal"]
        constant = (
            ["hcp:activity", "channel:preferred"]
            + [f"region={r}" for r in t.vocab.region]
            + [f"channel={c}" for c in t.vocab.channel]
        )
        varying = [c for c in varying if c in names]
        constant = [c for c in constant if c in names]

        def part(cols: list[str]) -> dict:
            idx = np.array([names[c] for c in cols], dtype=np.int64)
            onehot = np.zeros((len(idx), len(GROUPS)))
            onehot[np.arange(len(idx)), t.layout.groups[idx]] = 1.0
            return {
                "names": cols,
                "position": {c: i for i, c in enumerate(cols)},
                "idx": idx,
                "w": t.weights[idx],
                "mu": t.mu[idx],
                "G": onehot,
                "group": t.layout.groups[idx].astype(np.int64),
            }

        split = {"varying": part(varying), "constant": part(constant)}
        v = split["varying"]
        split["varying_offsets"] = (v["mu"] * v["w"]) @ v["G"]
        return split

    def _tags(self) -> ItemTags:
        """Every item's tags of all kinds side by side: raw and divided by the kind's count."""
        items = self.trained.items
        tags = self._tag_cache
        if tags is None or len(tags.raw) != items.n:
            vocab = self.trained.vocab
            widths = {k: len(getattr(vocab, k)) for k in TAG_KINDS}
            raw = [items.tag_matrix(k, widths[k], np.arange(items.n)) for k in TAG_KINDS]
            norm = []
            for matrix in raw:
                count = matrix.sum(axis=1)
                norm.append(matrix / np.where(count > 0, count, 1.0)[:, None])
            varying = self._split["varying"]
            kind_weight = np.concatenate(
                [
                    np.full(
                        widths[k],
                        varying["w"][varying["position"][f"{k}:personal"]]
                        if f"{k}:personal" in varying["position"]
                        else 0.0,
                    )
                    for k in TAG_KINDS
                ]
            )
            starts = np.cumsum([0] + [widths[k] for k in TAG_KINDS])
            tags = ItemTags(
                raw=np.hstack(raw).astype(np.float64),
                norm=np.hstack(norm).astype(np.float32),
                widths=widths,
                slices={k: slice(starts[i], starts[i + 1]) for i, k in enumerate(TAG_KINDS)},
                kind_weight=kind_weight,
            )
            self._tag_cache = tags
        return tags

    def _group_base(self, key: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(items, groups) contributions of the columns a request does not compute
        itself, and their sum per item."""
        n_items = self.trained.items.n
        cached = self._bases.get(key)
        if cached is not None and len(cached[0]) >= n_items:
            return cached
        with self._lock:
            cached = self._bases.get(key)
            start = 0 if cached is None else len(cached[0])
            if start < n_items:
                parts = [] if cached is None else [cached[0]]
                for lo in range(start, n_items, _BASE_CHUNK):
                    rows = np.arange(lo, min(lo + _BASE_CHUNK, n_items))
                    parts.append(self._compute_base(key, rows))
                base = np.vstack(parts)
                if key not in self._bases and len(self._bases) >= MAX_GROUP_BASES:
                    self._bases.pop(next(iter(self._bases)))  # the oldest
                cached = (base, base.sum(axis=1))
                self._bases[key] = cached
        return cached

    def _compute_base(self, key: tuple[int, int, int], rows: np.ndarray) -> np.ndarray:
        t = self.trained
        spec, seg, grp = key
        n = len(rows)
        zeros = {k: np.zeros((n, len(getattr(t.vocab, k)))) for k in TAG_KINDS}
        ctx = RowContext(
            specialty=np.full(n, spec, dtype=np.int32),
            segment=np.full(n, seg, dtype=np.int32),
            region=np.full(n, -1, dtype=np.int32),
            preferred_channel=np.full(n, -1, dtype=np.int32),
            group=np.full(n, grp, dtype=np.int32),
            channel=np.full(n, -1, dtype=np.int32),
            item=rows,
            n=np.zeros(n),
            p=np.zeros(n),
            tag_n=zeros,
            tag_p=zeros,
            taste=np.zeros((n, t.items.zt.shape[1]), dtype=np.float32),
        )
        X = design_matrix(ctx, t.items, t.history, t.vocab, t.layout, t.params)
        _logits, contributions = t.logits_and_contributions(X)
        for part in (self._split["varying"], self._split["constant"]):
            contributions -= ((X[:, part["idx"]] - part["mu"]) * part["w"]) @ part["G"]
        return contributions

    def personal_part(self, profile: HcpProfile) -> PersonalPart:
        """The columns the HCP's own history and request decide, over the whole item table."""
        t = self.trained
        a = t.params.prior_strength
        stats = profile.stats
        g, r_g, r_h = base_rates(
            np.array([profile.group]), stats["p"], stats["n"], t.history, t.vocab, a
        )
        tags = self._tags()
        gi = int(g[0])
        # Every tag value's personal lift, all kinds side by side (one pass).
        gv_n, gv_p = self._group_tags(gi)
        personal, _ = value_lifts(
            gv_n,
            gv_p,
            r_g,
            r_h,
            np.concatenate([stats[f"tag_p_{k}"][0] for k in TAG_KINDS])[None, :],
            np.concatenate([stats[f"tag_n_{k}"][0] for k in TAG_KINDS])[None, :],
            a,
        )
        personal = personal[0]
        varying, constant = self._split["varying"], self._split["constant"]
        # Float32 products over the table: half the memory to stream, and the
        # design matrix holds these columns in float32 too.
        logit_per_item = (tags.norm @ (tags.kind_weight * personal).astype(np.float32)).astype(
            np.float64
        )
        semantic = None
        if "semantic:personal" in varying["position"]:
            semantic = t.items.zt @ profile.taste[0]
            logit_per_item += varying["w"][varying["position"]["semantic:personal"]] * semantic
        x = np.zeros(len(constant["names"]), dtype=np.float32)
        where = constant["position"]
        activity = float((logit(r_h) - logit(r_g))[0])
        preferred = float(profile.channel >= 0 and profile.channel == profile.preferred_channel)
        x[where["hcp:activity"]] = activity
        x[where["channel:preferred"]] = preferred
        if profile.region >= 0:
            x[where[f"region={t.vocab.region[profile.region]}"]] = 1.0
        if profile.channel >= 0:
            x[where[f"channel={t.vocab.channel[profile.channel]}"]] = 1.0
        offsets = ((x - constant["mu"]) * constant["w"]) @ constant["G"]
        offsets -= self._split["varying_offsets"]
        return PersonalPart(
            profile=profile,
            personal=personal,
            semantic=semantic,
            constants={"hcp:activity": activity, "channel:preferred": preferred},
            offsets=offsets,
            logit_per_item=logit_per_item + offsets.sum(),
        )

    def column_values(self, part: PersonalPart, item_rows: np.ndarray) -> dict[str, np.ndarray]:
        """The personal columns' raw values for a few items (float32, as the design matrix)."""
        tags = self._tags()
        values: dict = dict(part.constants)
        for kind in TAG_KINDS:
            sl = tags.slices[kind]
            values[f"{kind}:personal"] = tags.norm[item_rows, sl] @ part.personal[sl].astype(
                np.float32
            )
        if part.semantic is not None:
            values["semantic:personal"] = part.semantic[item_rows]
        return values

    def rank_rows(self, part: PersonalPart, item_rows: np.ndarray) -> np.ndarray:
        """Logits of the items for one HCP: a cached group part plus the personal part."""
        _base, base_logit = self._group_base(part.profile.group_key)
        return base_logit[item_rows] + part.logit_per_item[item_rows]

    def contributions_rows(self, part: PersonalPart, item_rows: np.ndarray) -> np.ndarray:
        """Group contributions (rows, groups) of a few items; they sum to ``rank_rows``."""
        base, _ = self._group_base(part.profile.group_key)
        contributions = base[item_rows] + part.offsets
        varying = self._split["varying"]
        values = self.column_values(part, item_rows)
        for name, w, group in zip(varying["names"], varying["w"], varying["group"], strict=True):
            contributions[:, group] += w * values[name]
        return contributions

    def score_rows(
        self, profile: HcpProfile, item_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n,) and group contributions (n, groups) of the items for one HCP.

        The same numbers as ``evaluate(broadcast(profile, item_rows))`` (up to
        float32 rounding), without building the design matrix.
        """
        item_rows = np.asarray(item_rows, dtype=np.int64)
        part = self.personal_part(profile)
        return self.rank_rows(part, item_rows), self.contributions_rows(part, item_rows)

    def explain_rows(
        self, hcp: HCP, part: PersonalPart, item_rows: np.ndarray, contributions: np.ndarray
    ) -> list[list[str]]:
        """Drivers for a few items, from the columns the drivers read (no design matrix)."""
        t = self.trained
        item_rows = np.asarray(item_rows, dtype=np.int64)
        n_groups = len(t.vocab.group) + 1
        g = np.full(len(item_rows), part.profile.group if part.profile.group >= 0 else n_groups - 1)
        popularity, group_popularity = popularity_lifts(t.history, g, item_rows, t.params)
        values = self.column_values(part, item_rows)
        values["item:popularity"] = popularity
        values["item:group_popularity"] = group_popularity
        return drivers_for_rows(self, hcp, None, contributions, item_rows, values=values)


@dataclass
class PersonalPart:
    """What one HCP's history adds to the cached group part, for every item."""

    profile: HcpProfile
    personal: np.ndarray  # every tag value's personal lift, TAG_KINDS side by side
    semantic: np.ndarray | None  # (items,) taste . item text, when the model has text
    constants: dict[str, float]  # hcp:activity, channel:preferred
    offsets: np.ndarray  # (groups,) constant contributions, varying columns' means included
    logit_per_item: np.ndarray  # (items,) the personal part of every item's logit


@dataclass
class ItemTags:
    """Every item's tag matrices of all kinds side by side (``TAG_KINDS`` order)."""

    raw: np.ndarray  # (items, values) one-hot, themes as stored
    norm: np.ndarray  # the same divided by each kind's count per item (float32)
    widths: dict[str, int]
    slices: dict[str, slice]
    kind_weight: np.ndarray  # (values,) the weight of the value's kind:personal column


def extend_history(t: TrainedModel, extra: ItemTable):
    """Pooled statistics padded for items met after training (no exposures yet).

    Their text-neighbour lift is computed against the training catalogue, so a
    new module starts from how each group responded to modules worded like it.
    """
    h = t.history
    n_train = len(h.item_n)
    pad = extra.n
    neighbours = text_neighbours(extra.zt, t.items.zt[:n_train])
    knn = knn_lift(neighbours, h.group_item_p, h.group_item_n, h.group_p, h.group_n, h.global_rate)
    spec_knn = specialty_knn_lift(
        t.vocab, neighbours, h.group_item_p, h.group_item_n, h.group_p, h.group_n, h.global_rate
    )
    groups = h.group_item_n.shape[0]
    return replace(
        h,
        item_n=np.concatenate([h.item_n, np.zeros(pad)]),
        item_p=np.concatenate([h.item_p, np.zeros(pad)]),
        group_item_n=np.hstack([h.group_item_n, np.zeros((groups, pad))]),
        group_item_p=np.hstack([h.group_item_p, np.zeros((groups, pad))]),
        group_knn=np.hstack([h.group_knn, knn]),
        specialty_knn=np.hstack([h.specialty_knn, spec_knn]),
    )


_state: dict[str, ServingModel | None] = {"model": None}
_state_lock = threading.Lock()


def active_model(head: tuple | None = None) -> ServingModel | None:
    """The active model, reloaded when another model has been activated (one cheap query).

    A caller that has just read the active model's ``(id, model_version)``
    passes it as ``head`` (``(None, None)``: no active model) and saves the query.
    """
    if head is None:
        head = (
            AffinityModel.objects.filter(is_active=True).values_list("id", "model_version").first()
        )
    if head is None or head[0] is None:
        return None
    current = _state["model"]
    if current is not None and current.row_id == head[0]:
        return current
    with _state_lock:
        current = _state["model"]
        if current is None or current.row_id != head[0]:
            blob = (
                AffinityModel.objects.filter(pk=head[0]).values_list("artifact", flat=True).first()
            )
            if blob is None:
                return None
            current = ServingModel(head[0], head[1], TrainedModel.from_bytes(blob))
            _state["model"] = current
    return current


def _label(slug: str) -> str:
    return slug.replace("-", " ")


def drivers_for_rows(
    serving: ServingModel,
    hcp: HCP,
    X: np.ndarray | None,
    contributions: np.ndarray,
    item_rows,
    *,
    values: dict | None = None,
) -> list[list[str]]:
    """Short human-readable reasons behind each score, strongest first (vectorised).

    The columns they read come from the design matrix ``X``, or by name from
    ``values`` (one value per row, or one for all rows).
    """
    t = serving.trained
    items = t.items
    cols, picked, mu, weights = serving.driver_columns()
    if values is not None:
        n = len(item_rows)
        X = np.empty((n, len(picked)))
        for j, k in enumerate(picked):
            X[:, j] = values[k]
        single = (X - mu) * weights  # (rows, len(cols))
    else:
        single = (X[:, cols] - mu) * weights
    peers = " ".join(p for p in (hcp.specialty, hcp.segment) if p) or "similar"
    out = []
    for r, item_row in enumerate(item_rows):
        found: list[tuple[float, str]] = []
        for j, kind in enumerate(TAG_KINDS):
            total = float(contributions[r, j])
            if total < DRIVER_THRESHOLD:
                continue
            if kind == "theme":
                values = [t.vocab.theme[i] for i in np.flatnonzero(items.themes[item_row] > 0)]
            else:
                code = int(getattr(items, kind)[item_row])
                values = [getattr(t.vocab, kind)[code]] if code >= 0 else []
            if not values:
                continue
            value = ", ".join(_label(v) for v in values)
            mine = float(single[r, picked[f"{kind}:personal"]]) >= total / 2
            if kind in ("message", "theme"):
                text = (
                    f"engaged with {value} content"
                    if mine
                    else f"{peers} peers engage with {value} content"
                )
            else:
                noun = "tone" if kind == "tonality" else "format"
                text = f"prefers {value} {noun}" if mine else f"{peers} peers prefer {value} {noun}"
            found.append((total, text))
        semantic = float(contributions[r, GROUPS.index("semantic")])
        if "semantic:personal" in picked and semantic >= DRIVER_THRESHOLD:
            mine = float(single[r, picked["semantic:personal"]]) >= semantic / 2
            found.append(
                (
                    semantic,
                    "similar in wording to content they engaged with"
                    if mine
                    else f"wording resonates with {peers} peers",
                )
            )
        popularity = float(
            single[r, picked["item:popularity"]] + single[r, picked["item:group_popularity"]]
        )
        if popularity >= DRIVER_THRESHOLD:
            found.append((popularity, f"popular with {peers} HCPs"))
        preferred = float(single[r, picked["channel:preferred"]])
        if preferred >= DRIVER_THRESHOLD and hcp.preferred_channel:
            found.append(
                (preferred, f"on their preferred channel ({_label(hcp.preferred_channel)})")
            )
        activity = float(single[r, picked["hcp:activity"]])
        if activity >= DRIVER_THRESHOLD:
            found.append((activity, "engages more than most HCPs"))
        found.sort(key=lambda pair: -pair[0])
        out.append([text for _, text in found[:3]])
    return out


def _version_ids(versions_or_ids: Iterable) -> list[int]:
    return [int(getattr(v, "pk", v)) for v in versions_or_ids]


def popularity_scores(hcp: HCP, version_ids: list[int]) -> list[Score]:
    """Fallback without a trained model: smoothed engagement rate per version, flagged."""
    positive = Q(engagement_events__type="clicked") | Q(
        engagement_events__type="read", engagement_events__dwell_seconds__gte=READ_DWELL_SECONDS
    )
    stats = {
        row["id"]: row
        for row in ModuleVersion.objects.filter(id__in=version_ids)
        .annotate(
            exposures=Count("engagement_events__hcp", distinct=True),
            positives=Count("engagement_events__hcp", filter=positive, distinct=True),
        )
        .values("id", "exposures", "positives")
    }
    totals = EngagementEvent.objects.aggregate(n=Count("id"))
    prior = 0.05 if not totals["n"] else None
    if prior is None:
        all_rows = list(stats.values())
        exp = sum(s["exposures"] for s in all_rows)
        pos = sum(s["positives"] for s in all_rows)
        prior = (pos + 1.0) / (exp + 20.0)
    scores = []
    for vid in version_ids:
        s = stats.get(vid, {"exposures": 0, "positives": 0})
        p = (s["positives"] + 5.0 * prior) / (s["exposures"] + 5.0)
        contributions = dict.fromkeys(GROUPS, 0.0)
        contributions["baseline"] = float(logit(p))
        scores.append(
            Score(
                version_id=vid,
                probability=float(p),
                logit=float(logit(p)),
                contributions=contributions,
                drivers=["popular with HCPs overall (no trained model yet)"]
                if s["positives"]
                else [],
                model_version=None,
                fallback=True,
            )
        )
    return scores


def score_versions(
    hcp: HCP, versions_or_ids: Iterable, *, channel: str | None = None, with_drivers: bool = True
) -> list[Score]:
    """Score candidate versions for one HCP, in the order given.

    Vectorised: one query for the HCP's history, one matrix product for all
    candidates. Without a trained model it falls back to smoothed popularity
    and flags each score with ``fallback=True``.
    """
    version_ids = _version_ids(versions_or_ids)
    if not version_ids:
        return []
    serving = active_model()
    if serving is None:
        return popularity_scores(hcp, version_ids)
    rows = serving.item_rows(version_ids)
    known = rows >= 0
    ctx = serving.hcp_context(hcp, np.where(known, rows, 0), channel, time.time())
    X, logits, contributions = serving.evaluate(ctx)
    probabilities = sigmoid(logits)
    drivers = drivers_for_rows(serving, hcp, X, contributions, rows) if with_drivers else None
    scores = []
    as_lists = contributions.tolist()
    for i, vid in enumerate(version_ids):
        if not known[i]:
            continue  # a version id that does not exist: nothing to score
        scores.append(
            Score(
                version_id=vid,
                probability=float(probabilities[i]),
                logit=float(logits[i]),
                contributions=dict(zip(GROUPS, as_lists[i], strict=True)),
                drivers=drivers[i] if drivers is not None else [],
                model_version=serving.model_version,
            )
        )
    return scores


def _catalogue_rows(serving: ServingModel) -> np.ndarray:
    """The approved-now versions (or, when none, every version the model knows)."""
    ids = list(ModuleVersion.objects.approved_now().values_list("id", flat=True)[:5000])
    if ids:
        rows = serving.item_rows(ids)
        rows = rows[rows >= 0]
        if len(rows):
            return rows
    return np.arange(serving.trained.items.n)


def hcp_affinity(hcp: HCP) -> dict:
    """Predicted engagement probability per tag and channel value, everything else average."""
    serving = active_model()
    if serving is None:
        from content_modules.errors import Conflict

        raise Conflict(
            "No affinity model has been trained yet: POST /api/v1/affinity/train first.",
            field="model",
        )
    t = serving.trained
    now = time.time()
    rows = _catalogue_rows(serving)
    ctx = serving.hcp_context(hcp, rows, None, now)
    _X, logits, contributions = serving.evaluate(ctx)
    answer: dict = {
        "hcp": hcp.external_id,
        "model_version": serving.model_version,
        "n_events": EngagementEvent.objects.filter(hcp=hcp).count(),
    }
    for kind in TAG_KINDS:
        j = GROUPS.index(kind)
        rest = float(np.mean(logits - contributions[:, j]))
        values = getattr(t.vocab, kind)
        # A synthetic item per value: a group's contribution depends only on its
        # own columns, so the other kinds stay at the catalogue average.
        width = len(values)
        synthetic = ItemTable(
            ids=np.full(width, -1, dtype=np.int64),
            module_ids=np.full(width, -1, dtype=np.int64),
            message=np.full(width, -1, dtype=np.int16),
            tonality=np.full(width, -1, dtype=np.int16),
            format=np.full(width, -1, dtype=np.int16),
            themes=np.zeros((width, len(t.vocab.theme)), dtype=np.float32),
            z=np.zeros((width, t.items.z.shape[1]), dtype=np.float32),
            zt=np.zeros((width, t.items.zt.shape[1]), dtype=np.float32),
        )
        if kind == "theme":
            synthetic.themes[np.arange(width), np.arange(width)] = 1.0
        else:
            getattr(synthetic, kind)[:] = np.arange(width)
        value_ctx = serving.hcp_context(hcp, np.zeros(width, dtype=np.int64), None, now)
        value_ctx.item = np.arange(width) + t.items.n
        items = ItemTable.concat(t.items, synthetic)
        groups = t.history.group_item_n.shape[0]
        history = replace(
            t.history,
            item_n=np.concatenate([t.history.item_n, np.zeros(width)]),
            item_p=np.concatenate([t.history.item_p, np.zeros(width)]),
            group_item_n=np.hstack([t.history.group_item_n, np.zeros((groups, width))]),
            group_item_p=np.hstack([t.history.group_item_p, np.zeros((groups, width))]),
            group_knn=np.hstack([t.history.group_knn, np.zeros((groups, width), np.float32)]),
            specialty_knn=np.hstack(
                [t.history.specialty_knn, np.zeros((len(t.vocab.specialty) + 1, width))]
            ),
        )
        X = design_matrix(value_ctx, items, history, t.vocab, t.layout, t.params)
        _l, value_contrib = t.logits_and_contributions(X)
        answer[kind] = {
            value: round(float(sigmoid(rest + value_contrib[i, j])), 4)
            for i, value in enumerate(values)
        }
    answer["channel"] = {}
    for code, slug in enumerate(t.vocab.channel):
        ctx.channel = np.full(len(rows), code, dtype=np.int32)
        _X, channel_logits, _c = serving.evaluate(ctx)
        answer["channel"][slug] = round(float(sigmoid(np.mean(channel_logits))), 4)
    return answer


def group_prior_scores(specialty: str, segment: str, version_ids: list[int]) -> np.ndarray:
    """Probabilities for an HCP of this specialty and segment with no history or profile."""
    anonymous = HCP(external_id="prior", specialty=specialty, segment=segment)
    anonymous.pk = -1  # no events belong to it
    return np.array(
        [s.probability for s in score_versions(anonymous, version_ids, with_drivers=False)]
    )


def reset_cache() -> None:
    """Forget the loaded model (tests that swap models in one process)."""
    _state["model"] = None


__all__ = [
    "Score",
    "active_model",
    "group_prior_scores",
    "hcp_affinity",
    "popularity_scores",
    "reset_cache",
    "score_versions",
]
