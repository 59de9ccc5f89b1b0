"""The model's columns, written once: a table of blocks that training, the design matrix
and serving all read.

Each block is one entry in ``BLOCKS``: its name, its explanation group, its
column names (which give its width), its scope and the function that computes
its values. The scope says what a block depends on, which is what serving
needs to know to compute it cheaply:

- ``GROUP``: the item and the HCP's specialty, segment and group only (tag
  values and their crosses, embeddings, group lifts, popularity). Serving
  computes these once per (specialty, segment, group) for the whole item
  table and caches them.
- ``PERSONAL``: the item and the HCP's own history (personal lifts, taste).
  Serving computes them per request for every item, with the HCP's
  statistics held as one row that numpy broadcasts over the items.
- ``REQUEST``: one value per request whatever the item (region, channel,
  activity). Serving computes them once per request.

Adding a feature is one ``Block`` here plus its compute function; the layout,
the design matrix, the serving split and the explanations follow.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .features import (
    GROUPS,
    TAG_KINDS,
    History,
    ItemTable,
    Params,
    RowContext,
    Vocab,
    base_rates,
    logit,
    popularity_lifts,
    tag_lifts,
    value_lifts,
)


class Scope(enum.Enum):
    GROUP = "group"  # item x (specialty, segment, group): cached per group when serving
    PERSONAL = "personal"  # item x the HCP's own history: per request, every item
    REQUEST = "request"  # one value per request: the HCP's profile, activity, the channel


class Frame:
    """What the blocks compute from: rows of (HCP, item) pairs.

    In training every row has its own HCP (``RowContext`` fields all have one
    entry per row). When serving one HCP, its fields have a single entry and
    ``item`` lists the items: per-HCP values broadcast over the items, so a
    personal lift is computed once, not once per item. ``cache`` keeps
    item-side arrays (one-hots, their row weights) across calls that use the
    same item rows (serving's whole table).
    """

    def __init__(
        self,
        ctx: RowContext,
        items: ItemTable,
        history: History,
        vocab: Vocab,
        params: Params,
        cache: dict | None = None,
    ) -> None:
        self.ctx = ctx
        self.items = items
        self.history = history
        self.vocab = vocab
        self.params = params
        self.n = len(ctx.item)
        self.single = len(ctx.group) == 1 and self.n != 1
        self.cache = {} if cache is None else cache
        self.hcp_side: dict = {}  # per-HCP values, shared by ``with_items`` frames

    def with_items(self, item_rows: np.ndarray, cache: dict | None = None) -> Frame:
        """The same HCP(s) against other items, sharing what was computed per HCP."""
        ctx = copy.copy(self.ctx)  # dataclasses.replace re-runs __init__: 30 us a request
        ctx.item = np.asarray(item_rows, dtype=np.int64)
        frame = Frame(
            ctx,
            self.items,
            self.history,
            self.vocab,
            self.params,
            cache,
        )
        frame.hcp_side = self.hcp_side
        return frame

    def code(self, name: str) -> np.ndarray:
        """A profile code per row (specialty, segment, region, channel ...)."""
        value = getattr(self.ctx, name)
        if len(value) == self.n:
            return value
        if len(value) == 1:  # one HCP: np.full costs a tenth of np.broadcast_to
            return np.full(self.n, value[0], dtype=value.dtype)
        return np.broadcast_to(value, (self.n,))

    @property
    def rates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group bucket, the group's rate and the HCP's (one entry per HCP row)."""
        found = self.hcp_side.get("rates")
        if found is None:
            c = self.ctx
            found = base_rates(
                c.group, c.p, c.n, self.history, self.vocab, self.params.prior_strength
            )
            self.hcp_side["rates"] = found
        return found

    def onehot(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """One-hot (multi-hot for themes) of the rows' items, and its row sums (0 -> 1)."""
        key = ("onehot", kind)
        found = self.cache.get(key)
        if found is None:
            width = len(getattr(self.vocab, kind))
            onehot = self.items.tag_matrix(kind, width, self.ctx.item)
            weight = onehot.sum(axis=1)
            found = (onehot, np.where(weight > 0, weight, 1.0))
            self.cache[key] = found
        return found

    def normalised(self, kind: str) -> np.ndarray:
        """The one-hot divided by its row sums (float32): a lift's mean over an item's values."""
        key = ("norm", kind)
        found = self.cache.get(key)
        if found is None:
            onehot, weight = self.onehot(kind)
            found = (onehot / weight[:, None]).astype(np.float32)
            self.cache[key] = found
        return found

    def lifts(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Personal and group lift of every value of the kind (one row per HCP row)."""
        found = self.hcp_side.get(("lifts", kind))
        if found is None:
            if self.single:
                self._single_lifts()
            else:
                g, r_g, r_h = self.rates
                c = self.ctx
                self.hcp_side[("lifts", kind)] = tag_lifts(
                    kind,
                    g,
                    r_g,
                    r_h,
                    c.tag_p[kind],
                    c.tag_n[kind],
                    self.history,
                    self.params.prior_strength,
                )
            found = self.hcp_side[("lifts", kind)]
        return found

    def _single_lifts(self) -> None:
        """One HCP's lifts of every tag kind in one pass (the values side by side)."""
        g, r_g, r_h = self.rates
        gi = int(g[0])
        key = ("group_tags", gi)
        pooled = self.cache.get(key)
        if pooled is None:
            h = self.history
            pooled = (
                np.concatenate([h.group_tag_n[k][gi] for k in TAG_KINDS])[None, :],
                np.concatenate([h.group_tag_p[k][gi] for k in TAG_KINDS])[None, :],
            )
            self.cache[key] = pooled
        c = self.ctx
        personal, group = value_lifts(
            pooled[0],
            pooled[1],
            r_g,
            r_h,
            np.concatenate([c.tag_p[k] for k in TAG_KINDS], axis=1),
            np.concatenate([c.tag_n[k] for k in TAG_KINDS], axis=1),
            self.params.prior_strength,
        )
        start = 0
        for k in TAG_KINDS:
            end = start + c.tag_n[k].shape[1]
            self.hcp_side[("lifts", k)] = (personal[:, start:end], group[:, start:end])
            start = end

    def mean_over_values(self, kind: str, lift: np.ndarray) -> np.ndarray:
        """Each row's mean lift over its item's values of the kind."""
        if self.single:
            return self.normalised(kind) @ lift[0].astype(np.float32)
        onehot, weight = self.onehot(kind)
        return (lift * onehot).sum(axis=1) / weight

    def row_dot(self, hcp_side: np.ndarray, item_side: np.ndarray) -> np.ndarray:
        """Per-row dot product of an HCP-side vector and an item-side vector."""
        if len(hcp_side) == 1 and self.n != 1:
            return item_side @ hcp_side[0]
        return np.einsum("ij,ij->i", hcp_side, item_side)

    def crossed(self, out: np.ndarray, values: np.ndarray) -> None:
        """``values`` (rows, V) then the same placed in the block of the row's specialty,
        then of its segment: ``[all | spec=s1 .. spec=sS | seg=g1 .. seg=gG]``."""
        n, width = values.shape
        out[:, :width] = values
        col = width
        rows = np.arange(n)
        for count, name in (
            (len(self.vocab.specialty), "specialty"),
            (len(self.vocab.segment), "segment"),
        ):
            codes = self.code(name)
            ok = codes >= 0
            if count:
                block = out[:, col : col + count * width].reshape(n, count, width)
                block[rows[ok], codes[ok], :] = values[ok]
            col += count * width

    def item_rows_z(self) -> np.ndarray:
        return self.items.z[self.ctx.item]

    def item_rows_zt(self) -> np.ndarray:
        key = "zt"
        found = self.cache.get(key)
        if found is None:
            found = self.items.zt[self.ctx.item]
            self.cache[key] = found
        return found


Fill = Callable[[Frame, np.ndarray], None]


@dataclass(frozen=True)
class Block:
    """Consecutive columns of one explanation group, one scope and one compute function."""

    name: str
    group: str
    scope: Scope
    columns: Callable[[Vocab, Params], list[str]]
    fill: Fill  # writes the block's values into ``out`` (rows, width), which starts at 0
    enabled: Callable[[Params], bool] = field(default=lambda params: True)


def _prefixes(vocab: Vocab) -> list[str]:
    return ["all"] + [f"spec={s}" for s in vocab.specialty] + [f"seg={s}" for s in vocab.segment]


# --- compute functions --------------------------------------------------------------------


def _tags_crossed(kind: str) -> Fill:
    def fill(f: Frame, out: np.ndarray) -> None:
        f.crossed(out, f.onehot(kind)[0])

    return fill


def _tag_personal(kind: str) -> Fill:
    def fill(f: Frame, out: np.ndarray) -> None:
        out[:, 0] = f.mean_over_values(kind, f.lifts(kind)[0])

    return fill


def _tag_group(kind: str) -> Fill:
    def fill(f: Frame, out: np.ndarray) -> None:
        out[:, 0] = f.mean_over_values(kind, f.lifts(kind)[1])

    return fill


def _text_crossed(f: Frame, out: np.ndarray) -> None:
    f.crossed(out, f.item_rows_z())


def _semantic_personal(f: Frame, out: np.ndarray) -> None:
    out[:, 0] = f.row_dot(f.ctx.taste, f.item_rows_zt())


def _semantic_group(f: Frame, out: np.ndarray) -> None:
    g = f.rates[0]
    h = f.history
    out[:, 0] = f.row_dot(h.group_taste[g], f.item_rows_zt())
    out[:, 1] = h.group_knn[g, f.ctx.item]
    specialty = f.ctx.specialty
    spec_row = np.where(specialty >= 0, specialty, len(f.vocab.specialty))
    out[:, 2] = h.specialty_knn[spec_row, f.ctx.item]


def _profile_onehot(name: str) -> Fill:
    def fill(f: Frame, out: np.ndarray) -> None:
        codes = f.code(name)
        ok = codes >= 0
        out[np.arange(f.n)[ok], codes[ok]] = 1.0

    return fill


def _preferred_channel(f: Frame, out: np.ndarray) -> None:
    c = f.ctx
    out[:, 0] = ((c.channel >= 0) & (c.channel == c.preferred_channel)).astype(np.float32)


def _activity(f: Frame, out: np.ndarray) -> None:
    _g, r_g, r_h = f.rates
    out[:, 0] = logit(r_h) - logit(r_g)


def _popularity(f: Frame, out: np.ndarray) -> None:
    out[:, 0], out[:, 1] = popularity_lifts(f.history, f.rates[0], f.ctx.item, f.params)


def _item_offset(f: Frame, out: np.ndarray) -> None:
    out[:, 0] = f.items.offsets(f.ctx.item)


def _text(params: Params) -> bool:
    return params.text_features


def _tag_blocks(kind: str) -> list[Block]:
    return [
        Block(
            f"{kind}:tags",
            kind,
            Scope.GROUP,
            lambda vocab, params: [
                f"{kind}:{p}:{v}" for p in _prefixes(vocab) for v in getattr(vocab, kind)
            ],
            _tags_crossed(kind),
        ),
        Block(
            f"{kind}:personal",
            kind,
            Scope.PERSONAL,
            lambda vocab, params: [f"{kind}:personal"],
            _tag_personal(kind),
        ),
        Block(
            f"{kind}:group",
            kind,
            Scope.GROUP,
            lambda vocab, params: [f"{kind}:group"],
            _tag_group(kind),
        ),
    ]


BLOCKS: list[Block] = [
    *(block for kind in TAG_KINDS for block in _tag_blocks(kind)),
    Block(
        "semantic:text",
        "semantic",
        Scope.GROUP,
        lambda vocab, params: [
            f"semantic:{p}:z{i}" for p in _prefixes(vocab) for i in range(params.embedding_dim)
        ],
        _text_crossed,
        _text,
    ),
    Block(
        "semantic:personal",
        "semantic",
        Scope.PERSONAL,
        lambda vocab, params: ["semantic:personal"],
        _semantic_personal,
        _text,
    ),
    Block(
        "semantic:group",
        "semantic",
        Scope.GROUP,
        lambda vocab, params: [
            "semantic:group",
            "semantic:group_neighbours",
            "semantic:specialty_neighbours",
        ],
        _semantic_group,
        _text,
    ),
    Block(
        "specialty",
        "baseline",
        Scope.GROUP,
        lambda vocab, params: [f"specialty={s}" for s in vocab.specialty],
        _profile_onehot("specialty"),
    ),
    Block(
        "segment",
        "baseline",
        Scope.GROUP,
        lambda vocab, params: [f"segment={s}" for s in vocab.segment],
        _profile_onehot("segment"),
    ),
    Block(
        "region",
        "baseline",
        Scope.REQUEST,
        lambda vocab, params: [f"region={s}" for s in vocab.region],
        _profile_onehot("region"),
    ),
    Block(
        "channel",
        "baseline",
        Scope.REQUEST,
        lambda vocab, params: [f"channel={c}" for c in vocab.channel],
        _profile_onehot("channel"),
    ),
    Block(
        "channel:preferred",
        "baseline",
        Scope.REQUEST,
        lambda vocab, params: ["channel:preferred"],
        _preferred_channel,
    ),
    Block(
        "hcp:activity",
        "baseline",
        Scope.REQUEST,
        lambda vocab, params: ["hcp:activity"],
        _activity,
    ),
    Block(
        "item:popularity",
        "baseline",
        Scope.GROUP,
        lambda vocab, params: ["item:popularity", "item:group_popularity"],
        _popularity,
    ),
    # The item's own term: zero while the regression is fitted, then set with a
    # weight of one (training.item_offsets).
    Block(
        "item:offset",
        "baseline",
        Scope.GROUP,
        lambda vocab, params: ["item:offset"],
        _item_offset,
        lambda params: params.item_offsets,
    ),
]


# --- the layout and the design matrix -----------------------------------------------------


@dataclass
class Layout:
    """Column names, their explanation group and scope, and each block's span."""

    names: list[str]
    groups: np.ndarray  # int index into GROUPS per column
    scopes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    spans: list[tuple[Block, slice]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.names)

    @cached_property
    def position(self) -> dict[str, int]:
        return {name: j for j, name in enumerate(self.names)}

    def columns(self, scope: Scope) -> np.ndarray:
        """Indices of the columns of one scope."""
        return np.flatnonzero(self.scopes == scope)

    def spans_of(self, scope: Scope) -> list[tuple[Block, slice]]:
        return [(b, s) for b, s in self.spans if b.scope is scope]

    def span_of(self, column: str) -> tuple[Block, slice]:
        """The block holding a column, and the block's span."""
        j = self.position[column]
        return next((b, s) for b, s in self.spans if s.start <= j < s.stop)


def build_layout(vocab: Vocab, params: Params) -> Layout:
    """The columns of ``BLOCKS`` for a vocabulary and parameters, in order."""
    names: list[str] = []
    groups: list[int] = []
    scopes: list[Scope] = []
    spans: list[tuple[Block, slice]] = []
    for block in BLOCKS:
        if not block.enabled(params):
            continue
        cols = block.columns(vocab, params)
        spans.append((block, slice(len(names), len(names) + len(cols))))
        names.extend(cols)
        groups.extend([GROUPS.index(block.group)] * len(cols))
        scopes.extend([block.scope] * len(cols))
    return Layout(
        names=names,
        groups=np.asarray(groups, dtype=np.int8),
        scopes=np.asarray(scopes, dtype=object),
        spans=spans,
    )


def fill_blocks(frame: Frame, spans: list[tuple[Block, slice]], X: np.ndarray) -> None:
    """Compute the given blocks into their columns of ``X``."""
    for block, span in spans:
        block.fill(frame, X[:, span])


def design_matrix(
    ctx: RowContext,
    items: ItemTable,
    history: History,
    vocab: Vocab,
    layout: Layout,
    params: Params,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The raw (unstandardised) feature matrix, float32 (rows, columns).

    With ``out`` (zeros, float32, rows x width: e.g. rows of a larger matrix
    allocated once) the values are written there and ``out`` is answered.
    """
    if out is None:
        out = np.zeros((len(ctx.item), layout.width), dtype=np.float32)
    fill_blocks(Frame(ctx, items, history, vocab, params), layout.spans, out)
    return out
