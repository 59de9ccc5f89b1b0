"""Feature construction for the affinity model: history statistics and the design matrix.

Everything here works on numpy arrays (no Django), so training on a million
events, offline evaluation and per-request scoring share one code path.

The model is a logistic regression over a design matrix whose columns belong
to one explanation group each (message, theme, tonality, format, semantic,
baseline). Columns are standardised with the training mean, so a group's
contribution ``sum(w_j * (x_j - mu_j) / sd_j)`` is its deviation from the
average pair and the groups plus the intercept sum exactly to the logit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

TAG_KINDS = ("message", "theme", "tonality", "format")
GROUPS = ("message", "theme", "tonality", "format", "semantic", "baseline")

# Positive engagement: a click, or a read with at least this many seconds of
# dwell. Opens are not positive: mail clients pre-fetch images, so an "opened"
# says little about interest. Everything else reported for a pair (delivered,
# opened, dismissed, unsubscribed, a short read) counts as an exposure without
# engagement.
READ_DWELL_SECONDS = 10.0

EVENT_CODES = {
    "delivered": 0,
    "opened": 1,
    "clicked": 2,
    "read": 3,
    "dismissed": 4,
    "unsubscribed": 5,
}

DAY = 86400.0


def clip(x, low: float, high: float):
    """``np.clip`` for ``low < high``, without its dispatch overhead (serving clips a few
    short arrays per request; NaN stays NaN as there)."""
    return np.minimum(np.maximum(x, low), high)


def unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True)`` of a 1-d array: a quarter of its cost on
    the few dozen events of one HCP's request."""
    x = np.asarray(x).reshape(-1)
    if x.size == 0:
        return x.copy(), np.zeros(0, dtype=np.intp)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    new = np.empty(x.size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    inverse = np.empty(x.size, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def logit(p: np.ndarray | float) -> np.ndarray:
    p = clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@dataclass
class Vocab:
    """The categorical values the model knows, in column order."""

    message: list[str]
    theme: list[str]
    tonality: list[str]
    format: list[str]
    channel: list[str]
    specialty: list[str]
    segment: list[str]
    region: list[str]
    group: list[str]  # "specialty|segment"

    def index(self, kind: str) -> dict[str, int]:
        return {v: i for i, v in enumerate(getattr(self, kind))}

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass
class ItemTable:
    """Per-version features: tag indices (-1 unknown), theme multi-hot, reduced embedding."""

    ids: np.ndarray  # int64 version ids
    module_ids: np.ndarray
    message: np.ndarray  # int16
    tonality: np.ndarray
    format: np.ndarray
    themes: np.ndarray  # float32 (n, T), rows sum to 1 (or 0)
    z: np.ndarray  # float32 (n, d): whitened PCA of the centred text embedding
    zt: np.ndarray  # float32 (n, dt): unwhitened PCA, for taste vectors and text neighbours
    # The fit's per-item term (logit units): each item's engagement beyond what its
    # features predict, shrunk by empirical Bayes (training.item_offsets). Empty
    # until a fit sets it, and for items met after training: zeros.
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    def rows(self, version_ids: np.ndarray) -> np.ndarray:
        """Row of each version id (-1 for versions the table does not hold)."""
        ids = np.asarray(version_ids, dtype=np.int64).reshape(-1)
        if self.n == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable")
        order = self._order
        pos = np.minimum(np.searchsorted(self.ids, ids, sorter=order), self.n - 1)
        found = order[pos]
        return np.where(self.ids[found] == ids, found, -1).astype(np.int64)

    def offsets(self, rows: np.ndarray) -> np.ndarray:
        """The per-item term of the given rows (zeros where none was fitted)."""
        if len(self.offset) != self.n:
            return np.zeros(len(rows), np.float32)
        return self.offset[rows]

    def tag_matrix(self, kind: str, width: int, rows: np.ndarray) -> np.ndarray:
        """One-hot (multi-hot for themes) of one tag kind for the given rows."""
        if kind == "theme":
            return self.themes[rows]
        idx = getattr(self, kind)[rows]
        out = np.zeros((len(rows), width), dtype=np.float32)
        ok = idx >= 0
        out[np.nonzero(ok)[0], idx[ok]] = 1.0
        return out

    def take(self, rows: np.ndarray) -> ItemTable:
        return ItemTable(
            ids=self.ids[rows],
            module_ids=self.module_ids[rows],
            message=self.message[rows],
            tonality=self.tonality[rows],
            format=self.format[rows],
            themes=self.themes[rows],
            z=self.z[rows],
            zt=self.zt[rows],
            offset=self.offsets(np.asarray(rows)) if len(self.offset) else self.offset,
        )

    @staticmethod
    def concat(a: ItemTable, b: ItemTable) -> ItemTable:
        return ItemTable(
            ids=np.concatenate([a.ids, b.ids]),
            module_ids=np.concatenate([a.module_ids, b.module_ids]),
            message=np.concatenate([a.message, b.message]),
            tonality=np.concatenate([a.tonality, b.tonality]),
            format=np.concatenate([a.format, b.format]),
            themes=np.concatenate([a.themes, b.themes]),
            z=np.concatenate([a.z, b.z]),
            zt=np.concatenate([a.zt, b.zt]),
            offset=(
                np.concatenate([a.offsets(np.arange(a.n)), b.offsets(np.arange(b.n))])
                if len(a.offset) or len(b.offset)
                else a.offset
            ),
        )


@dataclass
class HcpTable:
    """Per-HCP profile codes (-1 when the value is unknown or rare)."""

    ids: np.ndarray  # int64 HCP primary keys
    specialty: np.ndarray
    segment: np.ndarray
    region: np.ndarray
    preferred_channel: np.ndarray
    group: np.ndarray

    def rows(self, hcp_ids: np.ndarray) -> np.ndarray:
        order = np.argsort(self.ids)
        pos = np.searchsorted(self.ids, hcp_ids, sorter=order)
        pos = np.clip(pos, 0, len(self.ids) - 1)
        found = self.ids[order[pos]] == hcp_ids
        return np.where(found, order[pos], -1)


@dataclass
class Pairs:
    """Events collapsed to (HCP row, item row) exposures: positive if any engagement."""

    hcp: np.ndarray  # int64 rows into an HcpTable
    item: np.ndarray  # int64 rows into an ItemTable
    t: np.ndarray  # float64 epoch seconds of the pair's last event
    y: np.ndarray  # float32 0/1
    channel: np.ndarray  # int16 channel code of the pair's first event, -1 unknown

    def __len__(self) -> int:
        return len(self.hcp)

    def select(self, mask: np.ndarray | slice) -> Pairs:
        return Pairs(
            self.hcp[mask], self.item[mask], self.t[mask], self.y[mask], self.channel[mask]
        )


def collapse_events(
    hcp: np.ndarray,
    item: np.ndarray,
    t: np.ndarray,
    etype: np.ndarray,
    dwell: np.ndarray,
    channel: np.ndarray,
    n_items: int,
) -> Pairs:
    """Collapse raw events (already mapped to rows) into one exposure per (HCP, item)."""
    keep = (hcp >= 0) & (item >= 0)
    hcp, item, t, etype, dwell, channel = (a[keep] for a in (hcp, item, t, etype, dwell, channel))
    positive = (etype == EVENT_CODES["clicked"]) | (
        # A missing (NaN) dwell compares False, as a dwell of 0 would.
        (etype == EVENT_CODES["read"]) & (dwell >= READ_DWELL_SECONDS)
    )
    if len(hcp) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0), np.zeros(0, np.float32), np.zeros(0, np.int16))
    key = hcp.astype(np.int64) * max(n_items, 1) + item
    order = np.lexsort((t, key))
    key_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    ends = np.r_[starts[1:], len(key_sorted)] - 1
    y = np.maximum.reduceat(positive[order].astype(np.int8), starts).astype(np.float32)
    return Pairs(
        hcp=hcp[order][starts],
        item=item[order][starts],
        t=t[order][ends],
        y=y,
        channel=channel[order][starts].astype(np.int16),
    )


SUM_CHUNK = 65_536


def _bucket_matrix(index: np.ndarray, weights: np.ndarray, size: int):
    """Sparse (size, n): row ``index[i]`` holds ``weights[i]`` in column i."""
    from scipy import sparse

    n = len(index)
    return sparse.csr_matrix((weights, (index, np.arange(n))), shape=(size, n))


def _group_sum(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum rows of ``values`` (n,) or (n, d) into ``size`` buckets by ``index``."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=size)[:size]
    return _weighted_rows_sum(index, values, np.arange(len(index)), np.ones(len(index)), size)


def _weighted_rows_sum(
    index: np.ndarray, table: np.ndarray, rows: np.ndarray, weights: np.ndarray, size: int
) -> np.ndarray:
    """``_group_sum(index, table[rows] * weights[:, None], size)`` in chunks of pairs.

    Each chunk's sums are a sparse product (bucket x pair weights times the
    chunk's rows of the table): a third of ``np.add.at``'s CPU, the same sums
    up to rounding. In chunks, without the (pairs x d) float64 temporaries: at
    a million pairs and 64 taste dimensions those are 0.5 GB each.
    """
    out = np.zeros((size, table.shape[1]), dtype=np.float64)
    for start in range(0, len(rows), SUM_CHUNK):
        part = slice(start, start + SUM_CHUNK)
        out += _bucket_matrix(index[part], weights[part], size) @ table[rows[part]].astype(
            np.float64
        )
    return out


@dataclass
class History:
    """Recency-weighted engagement statistics at one reference time.

    Per HCP (rows of an HcpTable, or a single HCP at scoring time): decayed
    exposures and positives overall, per tag value, and sums of the reduced
    embeddings of engaged and ignored content (the taste vector). Per group
    (specialty x segment) and per item: the same, pooled, for priors and
    popularity.
    """

    ref_time: float
    global_rate: float
    hcp_n: np.ndarray
    hcp_p: np.ndarray
    hcp_tag_n: dict[str, np.ndarray]
    hcp_tag_p: dict[str, np.ndarray]
    hcp_taste_pos: np.ndarray
    hcp_taste_neg: np.ndarray
    hcp_w_pos: np.ndarray
    hcp_w_neg: np.ndarray
    group_n: np.ndarray
    group_p: np.ndarray
    group_tag_n: dict[str, np.ndarray]
    group_tag_p: dict[str, np.ndarray]
    group_taste: np.ndarray
    item_n: np.ndarray
    item_p: np.ndarray
    group_item_n: np.ndarray
    group_item_p: np.ndarray
    group_knn: np.ndarray  # (groups, items) group's rate on each item's text neighbours, as lift
    specialty_knn: np.ndarray  # (specialties + 1, items) the same, pooled per specialty

    def pooled(self) -> History:
        """The same statistics without the per-HCP ones (what a stored model keeps)."""
        empty = np.zeros(0)
        return replace(
            self,
            hcp_n=empty,
            hcp_p=empty,
            hcp_tag_n={},
            hcp_tag_p={},
            hcp_taste_pos=empty,
            hcp_taste_neg=empty,
            hcp_w_pos=empty,
            hcp_w_neg=empty,
        )

    def arrays(self, prefix: str = "hist_") -> dict[str, np.ndarray]:
        """The pooled (group and item) statistics, for the artifact."""
        out = {
            "global_rate": np.array([self.global_rate]),
            "ref_time": np.array([self.ref_time]),
            "group_n": self.group_n,
            "group_p": self.group_p,
            "group_taste": self.group_taste,
            "item_n": self.item_n,
            "item_p": self.item_p,
            "group_item_n": self.group_item_n,
            "group_item_p": self.group_item_p,
            "group_knn": self.group_knn,
            "specialty_knn": self.specialty_knn,
        }
        for k in TAG_KINDS:
            out[f"group_tag_n_{k}"] = self.group_tag_n[k]
            out[f"group_tag_p_{k}"] = self.group_tag_p[k]
        return {prefix + k: v for k, v in out.items()}


def decay_weights(t: np.ndarray, ref_time: float, half_life_days: float) -> np.ndarray:
    age = np.maximum(ref_time - t, 0.0) / DAY
    return np.power(0.5, age / half_life_days)


def hcp_statistics(
    pairs: Pairs,
    items: ItemTable,
    vocab: Vocab,
    n_hcps: int,
    ref_time: float,
    half_life_days: float,
) -> dict[str, np.ndarray]:
    """Decayed per-HCP statistics from exposures before ``ref_time``."""
    w = decay_weights(pairs.t, ref_time, half_life_days)
    wp = w * pairs.y
    out: dict[str, np.ndarray] = {
        "n": _group_sum(pairs.hcp, w, n_hcps),
        "p": _group_sum(pairs.hcp, wp, n_hcps),
    }
    every_item = np.arange(items.n)
    for kind in TAG_KINDS:
        # The items' one-hots, gathered per pair inside the sums (not a pairs x V copy).
        table = items.tag_matrix(kind, len(getattr(vocab, kind)), every_item)
        out[f"tag_n_{kind}"] = _weighted_rows_sum(pairs.hcp, table, pairs.item, w, n_hcps)
        out[f"tag_p_{kind}"] = _weighted_rows_sum(pairs.hcp, table, pairs.item, wp, n_hcps)
    out["taste_pos"] = _weighted_rows_sum(pairs.hcp, items.zt, pairs.item, wp, n_hcps)
    out["taste_neg"] = _weighted_rows_sum(pairs.hcp, items.zt, pairs.item, w - wp, n_hcps)
    out["w_pos"] = _group_sum(pairs.hcp, wp, n_hcps)
    out["w_neg"] = _group_sum(pairs.hcp, w - wp, n_hcps)
    return out


def single_hcp_statistics(
    item: np.ndarray,
    t: np.ndarray,
    etype: np.ndarray,
    dwell: np.ndarray,
    items: ItemTable,
    tags: np.ndarray,
    ref_time: float,
    half_life_days: float,
    widths: dict[str, int],
) -> dict[str, np.ndarray]:
    """``hcp_statistics(collapse_events(...))`` for one HCP's raw events, without the
    machinery for millions (a serving request has a few dozen events).

    ``tags`` is every item's tag matrix of all kinds side by side (``TAG_KINDS``
    order, ``widths`` columns each), as ``ItemTable.tag_matrix`` gives them.
    """
    keep = item >= 0
    item, t, etype, dwell = item[keep], t[keep], etype[keep], dwell[keep]
    positive = (etype == EVENT_CODES["clicked"]) | (
        # A missing (NaN) dwell compares False, as a dwell of 0 would.
        (etype == EVENT_CODES["read"]) & (dwell >= READ_DWELL_SECONDS)
    )
    pair_items, inverse = unique_inverse(item)
    last = np.full(len(pair_items), -np.inf)
    np.maximum.at(last, inverse, t)
    y = np.zeros(len(pair_items))
    np.maximum.at(y, inverse, positive.astype(np.float64))
    w = decay_weights(last, ref_time, half_life_days)
    wp = w * y
    tag_n = w @ tags[pair_items]
    tag_p = wp @ tags[pair_items]
    z = items.zt[pair_items].astype(np.float64)
    out: dict[str, np.ndarray] = {"n": np.array([w.sum()]), "p": np.array([wp.sum()])}
    start = 0
    for kind in TAG_KINDS:
        end = start + widths[kind]
        out[f"tag_n_{kind}"] = tag_n[None, start:end]
        out[f"tag_p_{kind}"] = tag_p[None, start:end]
        start = end
    out["taste_pos"] = (wp @ z)[None, :]
    out["taste_neg"] = ((w - wp) @ z)[None, :]
    out["w_pos"] = np.array([wp.sum()])
    out["w_neg"] = np.array([(w - wp).sum()])
    return out


def compute_history(
    pairs: Pairs,
    items: ItemTable,
    hcps: HcpTable,
    vocab: Vocab,
    ref_time: float,
    half_life_days: float,
    taste_shrink: float,
) -> History:
    """Statistics of every HCP, group and item from exposures before ``ref_time``."""
    pairs = pairs.select(pairs.t < ref_time)
    per_hcp = hcp_statistics(pairs, items, vocab, len(hcps.ids), ref_time, half_life_days)
    n_groups = len(vocab.group) + 1  # the last bucket pools unknown groups
    group_of = np.where(hcps.group >= 0, hcps.group, n_groups - 1)
    g = group_of
    group_n = _group_sum(g, per_hcp["n"], n_groups)
    group_p = _group_sum(g, per_hcp["p"], n_groups)
    group_tag_n = {k: _group_sum(g, per_hcp[f"tag_n_{k}"], n_groups) for k in TAG_KINDS}
    group_tag_p = {k: _group_sum(g, per_hcp[f"tag_p_{k}"], n_groups) for k in TAG_KINDS}
    gpos = _group_sum(g, per_hcp["taste_pos"], n_groups)
    gneg = _group_sum(g, per_hcp["taste_neg"], n_groups)
    gwp = _group_sum(g, per_hcp["w_pos"], n_groups)
    gwn = _group_sum(g, per_hcp["w_neg"], n_groups)
    group_taste = gpos / (gwp + taste_shrink)[:, None] - gneg / (gwn + taste_shrink)[:, None]
    # Unweighted counts for popularity: the popularity baselines use plain rates too.
    item_n = np.bincount(pairs.item, minlength=items.n).astype(np.float64)
    item_p = np.bincount(pairs.item, weights=pairs.y, minlength=items.n)
    gi = g[pairs.hcp] * items.n + pairs.item
    group_item_n = np.bincount(gi, minlength=n_groups * items.n).reshape(n_groups, items.n)
    group_item_p = np.bincount(gi, weights=pairs.y, minlength=n_groups * items.n).reshape(
        n_groups, items.n
    )
    total_n = float(len(pairs))
    global_rate = float((pairs.y.sum() + 1.0) / (total_n + 20.0)) if total_n else 0.05
    neighbours = text_neighbours(items.zt, items.zt, exclude_self=True)
    group_knn = knn_lift(neighbours, group_item_p, group_item_n, group_p, group_n, global_rate)
    specialty_knn = specialty_knn_lift(
        vocab, neighbours, group_item_p, group_item_n, group_p, group_n, global_rate
    )
    return History(
        ref_time=ref_time,
        global_rate=global_rate,
        hcp_n=per_hcp["n"],
        hcp_p=per_hcp["p"],
        hcp_tag_n={k: per_hcp[f"tag_n_{k}"] for k in TAG_KINDS},
        hcp_tag_p={k: per_hcp[f"tag_p_{k}"] for k in TAG_KINDS},
        hcp_taste_pos=per_hcp["taste_pos"],
        hcp_taste_neg=per_hcp["taste_neg"],
        hcp_w_pos=per_hcp["w_pos"],
        hcp_w_neg=per_hcp["w_neg"],
        group_n=group_n,
        group_p=group_p,
        group_tag_n=group_tag_n,
        group_tag_p=group_tag_p,
        group_taste=group_taste,
        item_n=item_n,
        item_p=item_p,
        group_item_n=group_item_n.astype(np.float64),
        group_item_p=group_item_p,
        group_knn=group_knn,
        specialty_knn=specialty_knn,
    )


KNN_NEIGHBOURS = 10
KNN_PRIOR = 5.0


def text_neighbours(query: np.ndarray, ref: np.ndarray, *, exclude_self: bool = False):
    """Sparse (query x ref) weights: cosine of each query's nearest texts (positive part)."""
    from scipy import sparse

    n_q, n_r = len(query), len(ref)
    if n_q == 0 or n_r == 0:
        return sparse.csr_matrix((n_q, n_r))
    qn = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-9)
    rn = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-9)
    k = min(KNN_NEIGHBOURS, n_r - (1 if exclude_self else 0))
    if k <= 0:
        return sparse.csr_matrix((n_q, n_r))
    rows, cols, vals = [], [], []
    for start in range(0, n_q, 2048):
        sim = qn[start : start + 2048] @ rn.T
        if exclude_self:
            idx = np.arange(sim.shape[0])
            sim[idx, start + idx] = -np.inf
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(sim, top, axis=1)
        rows.append(np.repeat(np.arange(start, start + len(sim)), k))
        cols.append(top.ravel())
        vals.append(np.maximum(w, 0.0).ravel())
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_q, n_r)
    )


def knn_lift(neighbours, group_item_p, group_item_n, group_p, group_n, global_rate) -> np.ndarray:
    """(groups x queries): the group's engagement rate on each query's text neighbours, as lift.

    This carries what a group likes about content no tag records: a new
    module inherits the group's response to the modules worded like it.
    """
    a = KNN_PRIOR
    r_g = (group_p + a * global_rate) / (group_n + a)
    p = np.asarray(neighbours @ group_item_p.T).T  # (groups, queries)
    n = np.asarray(neighbours @ group_item_n.T).T
    rate = (p + a * r_g[:, None]) / (n + a)
    return (logit(rate) - logit(r_g)[:, None]).astype(np.float32)


def specialty_of_groups(vocab: Vocab) -> np.ndarray:
    """(specialties + 1, groups + 1) 0/1 matrix pooling groups into their specialty."""
    spec_index = vocab.index("specialty")
    unknown = len(vocab.specialty)
    pool = np.zeros((unknown + 1, len(vocab.group) + 1))
    for j, name in enumerate(vocab.group):
        pool[spec_index.get(name.split("|")[0], unknown), j] = 1.0
    pool[unknown, len(vocab.group)] = 1.0
    return pool


def specialty_knn_lift(vocab, neighbours, group_item_p, group_item_n, group_p, group_n, rate):
    """Text-neighbour lift pooled per specialty: three times the data of one group."""
    pool = specialty_of_groups(vocab)
    return knn_lift(
        neighbours, pool @ group_item_p, pool @ group_item_n, pool @ group_p, pool @ group_n, rate
    )


@dataclass
class Params:
    """Hyper-parameters of features and fit (stored with each model)."""

    half_life_days: float = 45.0
    prior_strength: float = 5.0  # pseudo-exposures pulling a rate to its prior
    taste_shrink: float = 3.0  # pseudo-weight shrinking taste vectors with little history
    embedding_dim: int = 16
    taste_dim: int = 64
    text_features: bool = True
    # Text read at clause level without the clauses that restate a tag (topics.py);
    # False: the whole text's embedding.
    text_clauses: bool = True
    popularity_features: bool = True
    # A per-item term fitted after the regression (empirical Bayes, training.item_offsets).
    item_offsets: bool = True
    C: float = 0.5
    max_rows: int = 300_000
    windows: int = 4
    seed: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def stored(cls, values: dict | None) -> Params:
        """The parameters of a stored model: one stored before a parameter existed gets
        the value that reproduces it (``STORED_BEFORE``), not today's default."""
        return cls(**{**STORED_BEFORE, **(values or {})})


# What a model stored before a parameter existed was fitted with.
STORED_BEFORE = {"item_offsets": False}


@dataclass
class RowContext:
    """What the design matrix needs per row, besides the item table."""

    specialty: np.ndarray
    segment: np.ndarray
    region: np.ndarray
    preferred_channel: np.ndarray
    group: np.ndarray  # -1 for groups outside the vocabulary
    channel: np.ndarray  # channel of delivery, -1 unknown
    item: np.ndarray  # rows into the item table
    # Per-row HCP statistics (already gathered for the row's HCP):
    n: np.ndarray
    p: np.ndarray
    tag_n: dict[str, np.ndarray]  # (rows, V) for the row's HCP
    tag_p: dict[str, np.ndarray]
    taste: np.ndarray  # (rows, d) personal taste vector


def personal_taste(
    pos: np.ndarray, neg: np.ndarray, wpos: np.ndarray, wneg: np.ndarray, shrink: float
) -> np.ndarray:
    """Decayed mean embedding of engaged content minus that of ignored content, shrunk."""
    return pos / (wpos + shrink)[..., None] - neg / (wneg + shrink)[..., None]


def base_rates(
    group: np.ndarray, p: np.ndarray, n: np.ndarray, history: History, vocab: Vocab, a: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group bucket per row, the group's overall rate and the HCP's (both shrunk)."""
    n_groups = len(vocab.group) + 1
    g = np.where(group >= 0, group, n_groups - 1)
    r0 = history.global_rate
    # The group's overall rate, shrunk to the global rate.
    r_g = (history.group_p[g] + a * r0) / (history.group_n[g] + a)
    # The HCP's overall rate, shrunk to its group's.
    r_h = (p + a * r_g) / (n + a)
    return g, r_g, r_h


def tag_lifts(
    kind: str,
    g: np.ndarray,
    r_g: np.ndarray,
    r_h: np.ndarray,
    tag_p: np.ndarray,
    tag_n: np.ndarray,
    history: History,
    a: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Personal and group lift (rows, V) of every value of one tag kind."""
    return value_lifts(
        history.group_tag_n[kind][g], history.group_tag_p[kind][g], r_g, r_h, tag_p, tag_n, a
    )


def value_lifts(
    gv_n: np.ndarray,
    gv_p: np.ndarray,
    r_g: np.ndarray,
    r_h: np.ndarray,
    tag_p: np.ndarray,
    tag_n: np.ndarray,
    a: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``tag_lifts`` from the group's statistics of the values (any columns, side by side)."""
    # Group lift of this tag value versus the group's overall rate.
    r_gv = (gv_p + a * r_g[:, None]) / (gv_n + a)  # (rows, V)
    # Personal lift: the HCP's decayed rate on this value versus what their
    # overall level and their group's taste for the value predict.
    expect = clip(r_h[:, None] * r_gv / r_g[:, None], 1e-4, 0.999)
    r_hv = (tag_p + a * expect) / (tag_n + a)
    return logit(r_hv) - logit(expect), logit(r_gv) - logit(r_g)[:, None]


def popularity_lifts(
    history: History, g: np.ndarray, item: np.ndarray, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """The item's engagement rate versus the global one, and its group's versus the item's."""
    if not params.popularity_features:
        return np.zeros(len(item)), np.zeros(len(item))
    a = params.prior_strength
    r0 = history.global_rate
    r_i = (history.item_p[item] + a * r0) / (history.item_n[item] + a)
    r_gi = (history.group_item_p[g, item] + a * r_i) / (history.group_item_n[g, item] + a)
    return logit(r_i) - logit(r0), logit(r_gi) - logit(r_i)
