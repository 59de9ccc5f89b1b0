"""The affinity model's serving face: one HCP's scores for candidate versions, explained.

    scores = serving.score(hcp, version_ids, channel="email", events=events)
    scores.probabilities            # one per scorable candidate, in the order asked
    scores.explain([0, 3])          # contributions per group (summing to the logit), drivers

``hcp`` is an ``HCP`` (saved, or an unsaved stand-in with ``pk = -1``: it owns
no events and gets its group's prior); ``events`` are its events as arrays
(``version``, ``t`` epoch seconds, ``type`` as ``EventType`` values, ``dwell``),
or None to read them. Without an active model the face answers smoothed
popularity, flagged ``fallback``.

How it is fast: the model's columns come from one table (``columns.BLOCKS``)
in which each block says what it depends on. ``GROUP`` blocks (tags and their
crosses, embeddings, group lifts, popularity) depend only on the item and the
HCP's specialty and segment: their contributions are computed once per group
for the whole item table and cached. ``PERSONAL`` blocks (the HCP's lifts and
taste) are computed per request over every item, with the HCP's statistics
as one row that broadcasts; ``REQUEST`` blocks (region, channel, activity) once
per request. The sum is the design matrix's answer (a test holds them equal).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.db.models import Count, Q

from content_modules.library.models import ModuleVersion

from ..models import HCP, AffinityModel, EngagementEvent
from . import data
from .columns import Frame, Scope, design_matrix, fill_blocks
from .features import (
    EVENT_CODES,
    GROUPS,
    READ_DWELL_SECONDS,
    TAG_KINDS,
    ItemTable,
    RowContext,
    knn_lift,
    logit,
    personal_taste,
    sigmoid,
    single_hcp_statistics,
    specialty_knn_lift,
    text_neighbours,
)
from .training import TrainedModel

DRIVER_THRESHOLD = 0.1  # logit units: smaller pushes are not worth a sentence
DRIVER_COLUMNS = (
    *(f"{k}:personal" for k in TAG_KINDS),
    "semantic:personal",
    "item:popularity",
    "item:group_popularity",
    "item:offset",
    "channel:preferred",
    "hcp:activity",
)
MAX_GROUP_BASES = 256  # (specialty, segment) caches per process, about 50 KB per 1,000 items
_BASE_CHUNK = 2048

NO_EVENTS = {
    "version": np.zeros(0, np.int64),
    "t": np.zeros(0),
    "type": np.zeros(0, np.int8),
    "dwell": np.zeros(0),
}


# --- the answer ---------------------------------------------------------------------------


@dataclass
class Explanation:
    """Why one candidate scored as it did."""

    contributions: dict[str, float]  # per explanation group; they sum to the logit
    drivers: list[str]


@dataclass
class Scores:
    """One HCP's scores for the candidates the model could score, in the order asked."""

    keep: np.ndarray  # which of the candidates asked for were scored
    version_ids: np.ndarray  # the scored ones
    logits: np.ndarray
    probabilities: np.ndarray
    model_version: str | None
    fallback: bool
    _explainer: Any = field(repr=False, default=None)

    def contributions(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """(positions, groups) contributions of the given scored candidates."""
        return self._explainer.contributions(np.asarray(positions, dtype=np.int64))

    def explain(self, positions: Sequence[int] | np.ndarray) -> list[Explanation]:
        """Contributions and drivers of the given scored candidates (by position)."""
        if not len(positions):
            return []
        return self._explainer.explain(np.asarray(positions, dtype=np.int64))


def score(
    hcp: HCP,
    version_ids,
    *,
    channel: str | None = None,
    events: dict | None = None,
    now: float | None = None,
    head: tuple | None = None,
) -> Scores:
    """Score candidate versions for one HCP with the active model (popularity without one).

    ``head`` is the active model's ``(id, model_version)`` when the caller has
    just read it (saves a query); ``(None, None)`` says no model is active.
    """
    ids = np.asarray(version_ids, dtype=np.int64).reshape(-1)
    if not len(ids):
        empty = np.zeros(0)
        return Scores(
            np.zeros(0, bool), ids, empty, empty, None, False, _PopularityExplainer(empty, [])
        )
    model = active_model(head)
    if model is None:
        return popularity(hcp, ids)
    return model.score(hcp, ids, channel=channel, events=events, now=now)


# --- the model in memory ------------------------------------------------------------------


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


@dataclass
class PersonalPart:
    """What one HCP's history and request add to the cached group part, for every item."""

    profile: HcpProfile
    values: np.ndarray  # (items, personal columns) raw values, float32
    logit_per_item: np.ndarray  # (items,) their contribution to the logit
    request_values: np.ndarray  # (request columns,) raw values
    request_contributions: np.ndarray  # (groups,) what the request columns add to each group
    frame: Frame  # the HCP against every item (its per-HCP values are reused for a few)


@dataclass
class ItemTags:
    """Every item's tag matrices of all kinds side by side (``TAG_KINDS`` order)."""

    raw: np.ndarray  # (items, values) one-hot, themes as stored
    widths: dict[str, int]


class ServingModel:
    """A loaded model plus the versions met since training (added on demand)."""

    def __init__(self, row_id, model_version: str, trained: TrainedModel) -> None:
        self.row_id = row_id
        self.model_version = model_version
        self.trained = trained
        self._lock = threading.Lock()
        self._bases: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._item_cache: dict = {}  # item-side arrays of the whole table (columns.Frame)
        self._rows_cache: dict[bytes, np.ndarray] = {}
        layout = trained.layout
        weights, mu = trained.weights, trained.mu
        group_of = np.zeros((layout.width, len(GROUPS)))
        group_of[np.arange(layout.width), layout.groups] = 1.0
        vocab = trained.vocab
        self._index = {k: vocab.index(k) for k in ("specialty", "segment", "region", "channel")}
        self._index["group"] = vocab.index("group")
        # GROUP columns: X @ weights_by_group - offsets, cached per group.
        group_cols = layout.columns(Scope.GROUP)
        gw = np.zeros((layout.width, len(GROUPS)), dtype=np.float32)
        gw[group_cols] = (weights[:, None] * group_of)[group_cols]
        offsets = (weights * mu)[group_cols] @ group_of[group_cols]
        offsets[GROUPS.index("baseline")] -= trained.intercept
        self._group_weights, self._group_offsets = gw, offsets
        # PERSONAL and REQUEST columns: their weights, means and groups.
        self._parts = {}
        for scope in (Scope.PERSONAL, Scope.REQUEST):
            idx = layout.columns(scope)
            self._parts[scope] = {
                "idx": idx,
                "position": {layout.names[j]: i for i, j in enumerate(idx)},
                "w": weights[idx],
                "mu": mu[idx],
                "wmu": float(weights[idx] @ mu[idx]),
                "G": group_of[idx],
            }
            # Spans in the scope's own matrix (its columns are whole blocks, in order).
            position = self._parts[scope]["position"]
            self._parts[scope]["spans"] = [
                (
                    block,
                    slice(
                        position[layout.names[s.start]],
                        position[layout.names[s.start]] + s.stop - s.start,
                    ),
                )
                for block, s in layout.spans_of(scope)
            ]

    # --- the entry point -------------------------------------------------------------

    def score(
        self,
        hcp: HCP,
        version_ids: np.ndarray,
        *,
        channel: str | None = None,
        events: dict | None = None,
        now: float | None = None,
    ) -> Scores:
        """Every candidate's logit: the cached group part plus the HCP's personal part."""
        rows = self.item_rows(version_ids)
        keep = rows >= 0
        rows = rows[keep]
        profile = self.hcp_profile(hcp, channel, time.time() if now is None else now, events)
        part = self.personal_part(profile)
        base, base_logit = self._group_base(profile.group_key)
        logits = base_logit[rows] + part.logit_per_item[rows]
        return Scores(
            keep=keep,
            version_ids=np.asarray(version_ids, dtype=np.int64)[keep],
            logits=logits,
            probabilities=sigmoid(logits),
            model_version=self.model_version,
            fallback=False,
            _explainer=_Explainer(self, hcp, part, base, rows),
        )

    # --- items -----------------------------------------------------------------------

    def item_rows(self, version_ids) -> np.ndarray:
        """Rows of the versions in the item table, loading unseen versions from the database."""
        ids = np.asarray(version_ids, dtype=np.int64).reshape(-1)
        # Delivery asks for the same catalogue's candidates request after request.
        key = ids.tobytes()
        rows = self._rows_cache.get(key)
        if rows is None:
            rows = self._lookup(ids)
            if len(self._rows_cache) >= 16:
                self._rows_cache.pop(next(iter(self._rows_cache)))
            self._rows_cache[key] = rows
        return rows

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
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
        self._item_cache = {}
        self._rows_cache = {}

    # --- one HCP ---------------------------------------------------------------------

    def hcp_profile(
        self, hcp: HCP, channel: str | None, now: float, events: dict | None = None
    ) -> HcpProfile:
        """Profile codes and recency-weighted history of one HCP (its events: one query,
        unless the caller passes them)."""
        t = self.trained
        index = self._index
        if events is None:
            events = self.events_of(hcp)
        n = len(events["t"])
        stats = single_hcp_statistics(
            self._lookup(np.asarray(events["version"], dtype=np.int64))
            if n
            else np.zeros(0, np.int64),
            np.asarray(events["t"], dtype=np.float64),
            event_codes(events["type"]),
            np.asarray(events["dwell"], dtype=np.float64),
            t.items,
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
            specialty=index["specialty"].get(hcp.specialty, -1),
            segment=index["segment"].get(hcp.segment, -1),
            region=index["region"].get(hcp.region, -1),
            preferred_channel=index["channel"].get(hcp.preferred_channel, -1),
            group=index["group"].get(f"{hcp.specialty}|{hcp.segment}", -1),
            channel=index["channel"].get(channel or hcp.preferred_channel or "", -1),
            stats=stats,
            taste=taste.astype(np.float32),
        )

    @staticmethod
    def events_of(hcp: HCP) -> dict:
        """The HCP's events as arrays (none for an unsaved stand-in)."""
        return data.load_events(hcp_id=hcp.pk) if hcp.pk and hcp.pk > 0 else NO_EVENTS

    def _tags(self) -> ItemTags:
        """Every item's tag matrices of all kinds side by side, and each kind's width."""
        found = self._item_cache.get("tags")
        if found is None:
            items, vocab = self.trained.items, self.trained.vocab
            widths = {k: len(getattr(vocab, k)) for k in TAG_KINDS}
            raw = [items.tag_matrix(k, widths[k], np.arange(items.n)) for k in TAG_KINDS]
            found = ItemTags(np.hstack(raw).astype(np.float64), widths)
            self._item_cache["tags"] = found
        return found

    def context(self, profile: HcpProfile, item_rows: np.ndarray) -> RowContext:
        """One HCP (a single row that broadcasts) against the given items."""
        stats = profile.stats

        def one(code: int) -> np.ndarray:
            return np.array([code], dtype=np.int32)

        return RowContext(
            specialty=one(profile.specialty),
            segment=one(profile.segment),
            region=one(profile.region),
            preferred_channel=one(profile.preferred_channel),
            group=one(profile.group),
            channel=one(profile.channel),
            item=np.asarray(item_rows, dtype=np.int64),
            n=stats["n"],
            p=stats["p"],
            tag_n={k: stats[f"tag_n_{k}"] for k in TAG_KINDS},
            tag_p={k: stats[f"tag_p_{k}"] for k in TAG_KINDS},
            taste=profile.taste,
        )

    def broadcast(self, profile: HcpProfile, item_rows: np.ndarray) -> RowContext:
        """The same context with every field repeated per row, as training builds it."""
        ctx = self.context(profile, item_rows)
        n = len(ctx.item)

        def rep(value):
            return np.repeat(np.asarray(value), n, axis=0)

        return RowContext(
            specialty=rep(ctx.specialty),
            segment=rep(ctx.segment),
            region=rep(ctx.region),
            preferred_channel=rep(ctx.preferred_channel),
            group=rep(ctx.group),
            channel=rep(ctx.channel),
            item=ctx.item,
            n=rep(ctx.n),
            p=rep(ctx.p),
            tag_n={k: rep(v) for k, v in ctx.tag_n.items()},
            tag_p={k: rep(v) for k, v in ctx.tag_p.items()},
            taste=rep(ctx.taste),
        )

    def frame(self, profile: HcpProfile, item_rows: np.ndarray, cache: dict | None = None):
        t = self.trained
        return Frame(self.context(profile, item_rows), t.items, t.history, t.vocab, t.params, cache)

    def evaluate(self, ctx: RowContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The training path: raw features, logits and group contributions for rows."""
        t = self.trained
        X = design_matrix(ctx, t.items, t.history, t.vocab, t.layout, t.params)
        logits, contributions = t.logits_and_contributions(X)
        return X, logits, contributions

    # --- the three parts -------------------------------------------------------------

    def personal_part(self, profile: HcpProfile) -> PersonalPart:
        """The PERSONAL columns over the whole item table, and the REQUEST columns."""
        n_items = self.trained.items.n
        personal = self._parts[Scope.PERSONAL]
        values = np.zeros((n_items, len(personal["idx"])), dtype=np.float32)
        frame = self.frame(profile, self._all_rows(), self._item_cache)
        fill_blocks(frame, personal["spans"], values)
        request = self._parts[Scope.REQUEST]
        r = np.zeros((1, len(request["idx"])), dtype=np.float32)
        fill_blocks(frame.with_items(np.zeros(1, np.int64)), request["spans"], r)
        r_contributions = ((r[0] - request["mu"]) * request["w"]) @ request["G"]
        logit_per_item = values @ personal["w"] - (personal["wmu"] - r_contributions.sum())
        return PersonalPart(profile, values, logit_per_item, r[0], r_contributions, frame)

    def _all_rows(self) -> np.ndarray:
        found = self._item_cache.get("all")
        if found is None or len(found) != self.trained.items.n:
            found = np.arange(self.trained.items.n)
            self._item_cache["all"] = found
        return found

    def _group_base(self, key: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(items, groups) contributions of the GROUP columns, and their sum per item."""
        n_items = self.trained.items.n
        cached = self._bases.get(key)
        if cached is not None and len(cached[0]) >= n_items:
            return cached
        with self._lock:
            cached = self._bases.get(key)
            start = 0 if cached is None else len(cached[0])
            if cached is None or start < n_items:
                parts = [] if cached is None else [cached[0]]
                for lo in range(start, n_items, _BASE_CHUNK):
                    rows = np.arange(lo, min(lo + _BASE_CHUNK, n_items))
                    parts.append(self._compute_base(key, rows))
                # No items at all: an empty base (it was None, and vstack needs a part).
                base = np.vstack(parts) if parts else self._compute_base(key, np.arange(0))
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
        X = np.zeros((n, t.layout.width), dtype=np.float32)
        frame = Frame(ctx, t.items, t.history, t.vocab, t.params)
        fill_blocks(frame, t.layout.spans_of(Scope.GROUP), X)
        return (X @ self._group_weights).astype(np.float64) - self._group_offsets

    def column_values(
        self, part: PersonalPart, item_rows: np.ndarray, names: Sequence[str]
    ) -> np.ndarray:
        """Raw values (rows, names) of named columns for a few items, from whichever part
        holds them (GROUP blocks are computed for just these items)."""
        layout = self.trained.layout
        out = np.zeros((len(item_rows), len(names)))
        personal, request = self._parts[Scope.PERSONAL], self._parts[Scope.REQUEST]
        group_values: dict[str, np.ndarray] = {}
        frame = None
        for j, name in enumerate(names):
            if name in personal["position"]:
                out[:, j] = part.values[item_rows, personal["position"][name]]
            elif name in request["position"]:
                out[:, j] = part.request_values[request["position"][name]]
            else:
                block, span = layout.span_of(name)
                if block.name not in group_values:
                    frame = frame or part.frame.with_items(item_rows)
                    block_out = np.zeros((len(item_rows), span.stop - span.start), np.float32)
                    block.fill(frame, block_out)
                    group_values[block.name] = block_out
                out[:, j] = group_values[block.name][:, layout.position[name] - span.start]
        return out

    def driver_columns(self) -> list[str]:
        return [c for c in DRIVER_COLUMNS if c in self.trained.layout.position]

    # --- what one HCP's values would score ------------------------------------------

    def tag_value_contributions(
        self, hcp: HCP, now: float, events: dict | None = None
    ) -> dict[str, np.ndarray]:
        """Each tag value's contribution to its kind's group for this HCP, on an item that
        carries only that value (its other kinds' columns are irrelevant to the group)."""
        t = self.trained
        profile = self.hcp_profile(hcp, None, now, events)
        out = {}
        for kind in TAG_KINDS:
            j = GROUPS.index(kind)
            values = getattr(t.vocab, kind)
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
            ctx = self.broadcast(profile, np.arange(width) + t.items.n)
            items = ItemTable.concat(t.items, synthetic)
            h = t.history
            groups = h.group_item_n.shape[0]
            history = replace(
                h,
                item_n=np.concatenate([h.item_n, np.zeros(width)]),
                item_p=np.concatenate([h.item_p, np.zeros(width)]),
                group_item_n=np.hstack([h.group_item_n, np.zeros((groups, width))]),
                group_item_p=np.hstack([h.group_item_p, np.zeros((groups, width))]),
                group_knn=np.hstack([h.group_knn, np.zeros((groups, width), np.float32)]),
                specialty_knn=np.hstack(
                    [h.specialty_knn, np.zeros((len(t.vocab.specialty) + 1, width))]
                ),
            )
            X = design_matrix(ctx, items, history, t.vocab, t.layout, t.params)
            _logits, contributions = t.logits_and_contributions(X)
            out[kind] = contributions[:, j]
        return out


class _Explainer:
    """Contributions and drivers for a few of one request's scored candidates."""

    def __init__(self, model: ServingModel, hcp: HCP, part: PersonalPart, base, rows) -> None:
        self.model, self.hcp, self.part, self.base, self.rows = model, hcp, part, base, rows

    def contributions(self, positions: np.ndarray) -> np.ndarray:
        rows = self.rows[positions]
        personal = self.model._parts[Scope.PERSONAL]
        values = self.part.values[rows]
        return (
            self.base[rows]
            + ((values - personal["mu"]) * personal["w"]) @ personal["G"]
            + self.part.request_contributions
        )

    def explain(self, positions: np.ndarray) -> list[Explanation]:
        rows = self.rows[positions]
        contributions = self.contributions(positions)
        names = self.model.driver_columns()
        values = self.model.column_values(self.part, rows, names)
        drivers = drivers_for_rows(self.model, self.hcp, contributions, rows, names, values)
        return [
            Explanation(dict(zip(GROUPS, c, strict=True)), d)
            for c, d in zip(contributions.tolist(), drivers, strict=True)
        ]


def event_codes(types: np.ndarray) -> np.ndarray:
    """Event types as the model's codes (``EventType`` values or codes already)."""
    types = np.asarray(types)
    if types.dtype.kind in "iu":
        return types.astype(np.int8)
    get = EVENT_CODES.get
    return np.fromiter((get(str(x), -1) for x in types), dtype=np.int8, count=len(types))


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


# --- drivers ------------------------------------------------------------------------------


def _label(slug: str) -> str:
    return slug.replace("-", " ")


def drivers_for_rows(
    model: ServingModel,
    hcp: HCP,
    contributions: np.ndarray,
    item_rows,
    names: Sequence[str],
    values: np.ndarray,
) -> list[list[str]]:
    """Short human-readable reasons behind each score, strongest first.

    ``values`` holds the raw values of the columns ``names`` (one row per item),
    from the design matrix or from ``ServingModel.column_values``.
    """
    t = model.trained
    items = t.items
    position = t.layout.position
    cols = [position[c] for c in names]
    single = (values - t.mu[cols]) * t.weights[cols]  # (rows, len(names))
    picked = {name: j for j, name in enumerate(names)}
    peers = " ".join(p for p in (hcp.specialty, hcp.segment) if p) or "similar"
    out = []
    for r, item_row in enumerate(item_rows):
        found: list[tuple[float, str]] = []
        for j, kind in enumerate(TAG_KINDS):
            total = float(contributions[r, j])
            if total < DRIVER_THRESHOLD:
                continue
            if kind == "theme":
                tags = [t.vocab.theme[i] for i in np.flatnonzero(items.themes[item_row] > 0)]
            else:
                code = int(getattr(items, kind)[item_row])
                tags = [getattr(t.vocab, kind)[code]] if code >= 0 else []
            if not tags:
                continue
            value = ", ".join(_label(v) for v in tags)
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
        popularity_push = float(
            single[r, picked["item:popularity"]] + single[r, picked["item:group_popularity"]]
        )
        if popularity_push >= DRIVER_THRESHOLD:
            found.append((popularity_push, f"popular with {peers} HCPs"))
        if "item:offset" in picked:
            own = float(single[r, picked["item:offset"]])
            if own >= DRIVER_THRESHOLD:
                found.append((own, "engages HCPs more than content tagged and worded like it"))
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


# --- without a model ----------------------------------------------------------------------


class _PopularityExplainer:
    def __init__(self, logits: np.ndarray, drivers: list[list[str]]) -> None:
        self.logits, self.drivers = logits, drivers

    def contributions(self, positions: np.ndarray) -> np.ndarray:
        out = np.zeros((len(positions), len(GROUPS)))
        out[:, GROUPS.index("baseline")] = self.logits[positions]
        return out

    def explain(self, positions: np.ndarray) -> list[Explanation]:
        return [
            Explanation(dict(zip(GROUPS, c, strict=True)), self.drivers[i])
            for c, i in zip(self.contributions(positions).tolist(), positions, strict=True)
        ]


def popularity(hcp: HCP, version_ids: np.ndarray) -> Scores:
    """Fallback without a trained model: smoothed engagement rate per version, flagged."""
    ids = [int(v) for v in version_ids]
    positive = Q(engagement_events__type="clicked") | Q(
        engagement_events__type="read", engagement_events__dwell_seconds__gte=READ_DWELL_SECONDS
    )
    stats = (
        {
            row["id"]: row
            for row in ModuleVersion.objects.filter(id__in=ids)
            .annotate(
                exposures=Count("engagement_events__hcp", distinct=True),
                positives=Count("engagement_events__hcp", filter=positive, distinct=True),
            )
            .values("id", "exposures", "positives")
        }
        if ids
        else {}
    )
    prior = 0.05
    if stats and EngagementEvent.objects.exists():
        exp = sum(s["exposures"] for s in stats.values())
        pos = sum(s["positives"] for s in stats.values())
        prior = (pos + 1.0) / (exp + 20.0)
    # Every id asked is scored: one the database does not hold has no engagement.
    keep = np.ones(len(ids), dtype=bool)
    kept = [stats.get(v, {"exposures": 0, "positives": 0}) for v in ids]
    p = np.array([(s["positives"] + 5.0 * prior) / (s["exposures"] + 5.0) for s in kept])
    logits = logit(p) if len(p) else np.zeros(0)
    drivers = [
        ["popular with HCPs overall (no trained model yet)"] if s["positives"] else [] for s in kept
    ]
    return Scores(
        keep=keep,
        version_ids=np.asarray(ids, dtype=np.int64),
        logits=np.asarray(logits, dtype=np.float64),
        probabilities=p,
        model_version=None,
        fallback=True,
        _explainer=_PopularityExplainer(np.asarray(logits, dtype=np.float64), drivers),
    )


# --- the active model ---------------------------------------------------------------------

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


def reset_cache() -> None:
    """Forget the loaded model (tests that swap models in one process)."""
    _state["model"] = None
