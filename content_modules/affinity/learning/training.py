"""Fit the affinity model and serialise it (storing and activating it is ``training_runs``)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from content_modules.errors import Conflict

from . import data
from .columns import Layout, build_layout, design_matrix
from .features import (
    GROUPS,
    TAG_KINDS,
    HcpTable,
    History,
    ItemTable,
    Pairs,
    Params,
    RowContext,
    Vocab,
    collapse_events,
    compute_history,
    personal_taste,
    sigmoid,
)

Progress = Callable[[str], None]


@dataclass
class TrainedModel:
    """Everything scoring needs: vocabulary, weights, item table and pooled statistics."""

    vocab: Vocab
    params: Params
    layout: Layout
    reducer: data.TextReducer
    items: ItemTable
    history: History  # pooled group/item statistics only (per-HCP arrays are empty)
    coef: np.ndarray  # weights on standardised columns
    intercept: float
    mu: np.ndarray
    sd: np.ndarray
    metrics: dict
    n_events: int = 0
    n_hcps: int = 0

    @property
    def weights(self) -> np.ndarray:
        """Weights on raw columns: logit = intercept + sum(weights * (x - mu))."""
        return self.coef / self.sd

    def logits_and_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n,) and per-group contributions (n, len(GROUPS)) that sum to them."""
        cache = self.__dict__.get("_group_cache")
        if cache is None:
            onehot = np.zeros((self.layout.width, len(GROUPS)), dtype=np.float64)
            onehot[np.arange(self.layout.width), self.layout.groups] = 1.0
            weights = self.weights
            # sum_j w_j (x_j - mu_j) per group = X @ (w * onehot) - (w * mu) @ onehot
            offsets = (weights * self.mu) @ onehot
            offsets[GROUPS.index("baseline")] -= self.intercept
            cache = ((weights[:, None] * onehot).astype(np.float32), offsets)
            self.__dict__["_group_cache"] = cache
        group_weights, offsets = cache
        contributions = (X @ group_weights).astype(np.float64) - offsets
        return contributions.sum(axis=1), contributions

    def predict(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits_and_contributions(X)[0])

    # --- serialisation: npz of arrays plus JSON, no pickle ---------------------------
    def to_bytes(self) -> bytes:
        meta = {
            "vocab": self.vocab.as_dict(),
            "params": self.params.as_dict(),
            "layout_names": self.layout.names,
            "metrics": self.metrics,
            "intercept": self.intercept,
            "n_events": self.n_events,
            "n_hcps": self.n_hcps,
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "layout_groups": self.layout.groups,
            "coef": self.coef,
            "mu": self.mu,
            "sd": self.sd,
            "reducer_mean": self.reducer.mean,
            "reducer_components": self.reducer.components,
            "reducer_taste": self.reducer.taste,
            "reducer_centroids": self.reducer.centroids,
            "reducer_keep": self.reducer.keep,
            "item_ids": self.items.ids,
            "item_module_ids": self.items.module_ids,
            "item_message": self.items.message,
            "item_tonality": self.items.tonality,
            "item_format": self.items.format,
            "item_themes": self.items.themes,
            "item_z": self.items.z,
            "item_zt": self.items.zt,
            "item_offset": self.items.offset,
            **self.history.arrays(),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stub: allow_pickle
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedModel:
        with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        meta = json.loads(a["meta"].tobytes().decode())
        vocab = Vocab(**meta["vocab"])
        params = Params.stored(meta["params"])
        empty = np.zeros(0)
        history = History(
            ref_time=float(a["hist_ref_time"][0]),
            global_rate=float(a["hist_global_rate"][0]),
            hcp_n=empty,
            hcp_p=empty,
            hcp_tag_n={},
            hcp_tag_p={},
            hcp_taste_pos=empty,
            hcp_taste_neg=empty,
            hcp_w_pos=empty,
            hcp_w_neg=empty,
            group_n=a["hist_group_n"],
            group_p=a["hist_group_p"],
            group_tag_n={k: a[f"hist_group_tag_n_{k}"] for k in TAG_KINDS},
            group_tag_p={k: a[f"hist_group_tag_p_{k}"] for k in TAG_KINDS},
            group_taste=a["hist_group_taste"],
            item_n=a["hist_item_n"],
            item_p=a["hist_item_p"],
            group_item_n=a["hist_group_item_n"],
            group_item_p=a["hist_group_item_p"],
            group_knn=a["hist_group_knn"],
            specialty_knn=a["hist_specialty_knn"],
        )
        items = ItemTable(
            ids=a["item_ids"],
            module_ids=a["item_module_ids"],
            message=a["item_message"],
            tonality=a["item_tonality"],
            format=a["item_format"],
            themes=a["item_themes"],
            z=a["item_z"],
            zt=a["item_zt"],
            offset=a.get("item_offset", np.zeros(0, np.float32)),
        )
        return cls(
            vocab=vocab,
            params=params,
            layout=stored_layout(vocab, params, meta["layout_names"]),
            reducer=data.TextReducer(
                a["reducer_mean"],
                a["reducer_components"],
                a["reducer_taste"],
                a.get("reducer_centroids"),  # absent from whole-text models
                a.get("reducer_keep"),
            ),
            items=items,
            history=history,
            coef=a["coef"],
            intercept=float(meta["intercept"]),
            mu=a["mu"],
            sd=a["sd"],
            metrics=meta["metrics"],
            n_events=int(meta["n_events"]),
            n_hcps=int(meta["n_hcps"]),
        )


def stored_layout(vocab: Vocab, params: Params, names: list[str]) -> Layout:
    """The column table's layout for a stored model, checked against the names it was fit on."""
    layout = build_layout(vocab, params)
    if layout.names != list(names):
        raise ValueError(
            "The stored model's columns differ from this code's column table "
            f"({len(names)} stored, {layout.width} now): retrain it."
        )
    return layout


@dataclass
class Dataset:
    """Raw material for a fit, already in arrays (from the database or a benchmark)."""

    vocab: Vocab
    items: ItemTable
    reducer: data.TextReducer
    hcps: HcpTable
    events: dict[str, np.ndarray]  # hcp (pk), version (pk), t, type, dwell, channel


def event_pairs(ds: Dataset, mask: np.ndarray | None = None) -> Pairs:
    """Collapse (a subset of) the dataset's events into exposures on table rows."""
    ev = ds.events
    if mask is None:
        mask = np.ones(len(ev["t"]), dtype=bool)
    return collapse_events(
        ds.hcps.rows(ev["hcp"][mask]),
        ds.items.rows(ev["version"][mask]),
        ev["t"][mask],
        ev["type"][mask],
        ev["dwell"][mask],
        ev["channel"][mask],
        ds.items.n,
    )


def row_context(pairs: Pairs, hcps: HcpTable, history: History, params: Params) -> RowContext:
    """Per-row profile codes and per-row HCP statistics for labelled pairs."""
    h = pairs.hcp
    taste = personal_taste(
        history.hcp_taste_pos[h],
        history.hcp_taste_neg[h],
        history.hcp_w_pos[h],
        history.hcp_w_neg[h],
        params.taste_shrink,
    )
    return RowContext(
        specialty=hcps.specialty[h],
        segment=hcps.segment[h],
        region=hcps.region[h],
        preferred_channel=hcps.preferred_channel[h],
        group=hcps.group[h],
        channel=pairs.channel.astype(np.int32),
        item=pairs.item,
        n=history.hcp_n[h],
        p=history.hcp_p[h],
        tag_n={k: history.hcp_tag_n[k][h] for k in TAG_KINDS},
        tag_p={k: history.hcp_tag_p[k][h] for k in TAG_KINDS},
        taste=taste.astype(np.float32),
    )


def _windows(t: np.ndarray, count: int) -> list[tuple[float, float]]:
    """Label windows over the latest part of the timeline; history is everything before each."""
    qs = np.linspace(1.0 - 0.2 * count, 1.0, count + 1)
    edges = np.quantile(t, np.clip(qs, 0.0, 1.0))
    edges[-1] = t.max() + 1.0
    return [(float(edges[i]), float(edges[i + 1])) for i in range(count) if edges[i + 1] > edges[i]]


def calibration_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """Brier score, expected calibration error, log loss and AUC of probabilities."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    out = {"n": len(y), "positive_rate": float(y.mean()) if len(y) else 0.0}
    if len(y) == 0:
        return out
    out["brier"] = float(brier_score_loss(y, p))
    out["log_loss"] = float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    out["ece"] = float(ece)
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, p))
    return out


def column_sd(X: np.ndarray, mean: np.ndarray, step: int = 65_536) -> np.ndarray:
    """``X.std(axis=0)`` (float32, ``mean`` being ``X.mean(axis=0)``), bit for bit,
    without its full-size temporary (``X - mean``: 0.9 GB at 300,000 x 720).

    numpy sums a C-ordered matrix over axis 0 row after row, so carrying the
    running sum into the first row of each chunk repeats its additions.
    """
    acc = np.zeros(X.shape[1], dtype=X.dtype)
    for start in range(0, len(X), step):
        d = X[start : start + step] - mean
        d *= d
        # The running sum added to the chunk's first row: the same additions as
        # summing it as a row of its own, without copying the chunk to append it.
        d[0] += acc
        acc = np.add.reduce(d, axis=0)
    return np.sqrt(acc / max(len(X), 1))


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS (OpenBLAS, numpy's and scipy's) on one thread while fitting.

    SciPy's L-BFGS-B (since 1.15, the solver of every logistic regression
    here) calls BLAS on vectors as long as the coefficients, where OpenBLAS's
    threads cost more than they bring: on this machine a training run spent
    four times the CPU in the solver with two threads as with one (measured
    in ``bench/train_speed.py``; scipy/scipy#23191 reports the same). A
    worker trains on one core anyway, and one thread also makes a fit's sums
    the same on any machine.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fit(
    ds: Dataset,
    params: Params | None = None,
    progress: Progress | None = None,
    *,
    pooled: bool = True,
) -> TrainedModel:
    """Fit on every event of the dataset; the model's pooled statistics use all of them.

    Without ``pooled`` the statistics for serving are left out (the model's
    ``history`` is the last window's), and so is the calibration check (a
    second fit whose figures only a stored model reports): for fits that are
    only scored against a history given to them (the gate's, the evaluation's).
    """
    with one_blas_thread():
        return _fit(ds, params, progress, pooled=pooled)


def _fit(ds: Dataset, params: Params | None, progress: Progress | None, *, pooled: bool):
    from sklearn.linear_model import LogisticRegression

    params = params or Params()
    say = progress or (lambda _msg: None)
    t = ds.events["t"]
    if len(t) == 0:
        raise Conflict("There are no engagement events to train on.", field="events")
    layout = build_layout(ds.vocab, params)
    rng = np.random.default_rng(params.seed)
    windows = _windows(t, params.windows)
    per_window = max(params.max_rows // max(len(windows), 1), 1)
    # The labelled rows of every window first, so the design matrix is allocated
    # once and each window's rows are computed straight into it: stacking
    # per-window blocks would hold every row twice (at 300,000 x 720 float32,
    # 0.9 GB more at the peak).
    labelled_windows = []
    for start, end in windows:
        labelled = event_pairs(ds, (t >= start) & (t < end))
        if len(labelled) > per_window:
            labelled = labelled.select(
                np.sort(rng.choice(len(labelled), per_window, replace=False))
            )
        labelled_windows.append(labelled)
    sizes = [len(labelled) for labelled in labelled_windows]
    row_items = (
        np.concatenate([labelled.item for labelled in labelled_windows])
        if labelled_windows
        else np.zeros(0, dtype=np.int64)
    )
    X = np.zeros((sum(sizes), layout.width), dtype=np.float32)
    y = (
        np.concatenate([labelled.y for labelled in labelled_windows])
        if labelled_windows
        else np.zeros(0, dtype=np.float32)
    )
    row = 0
    last_history: History | None = None
    for i, ((start, _end), labelled) in enumerate(zip(windows, labelled_windows, strict=True)):
        say(f"features for window {i + 1}/{len(windows)}")
        history = compute_history(
            event_pairs(ds, t < start),
            ds.items,
            ds.hcps,
            ds.vocab,
            start,
            params.half_life_days,
            params.taste_shrink,
        )
        ctx = row_context(labelled, ds.hcps, history, params)
        design_matrix(
            ctx, ds.items, history, ds.vocab, layout, params, out=X[row : row + len(labelled)]
        )
        row += len(labelled)
        # The last window's history stands for the pooled one when that is not wanted.
        last_history = None if pooled else history
        del ctx, history
    del labelled_windows
    if len(np.unique(y)) < 2:
        raise Conflict(
            "Training needs both engaged and non-engaged exposures; the events hold only one kind.",
            field="events",
        )
    mean = X.mean(axis=0)
    mu = mean.astype(np.float64)
    sd = column_sd(X, mean).astype(np.float64)
    sd = np.where(sd > 1e-6, sd, 1.0)
    # Standardise in place, in float32: a float64 copy of a million-row design
    # matrix would double the peak memory for no gain in the fit.
    Xs = X
    Xs -= mu.astype(np.float32)
    Xs /= sd.astype(np.float32)
    n_windows = len(sizes)
    del X
    metrics: dict = {}
    last = sizes[-1] if sizes else 0
    if pooled and n_windows > 1 and 0 < y[len(y) - last :].sum() < last:
        # Calibration is measured on the latest window with a fit that never saw it.
        say("calibration check on the latest window")
        check = LogisticRegression(C=params.C, max_iter=300).fit(Xs[:-last], y[:-last])
        held_out = check.decision_function(Xs[-last:])
        if params.item_offsets:  # the check's own per-item terms, as the model has them
            seen, _spread = item_offsets(
                check.decision_function(Xs[:-last]), y[:-last], row_items[:-last], ds.items.n
            )
            held_out = held_out + seen[row_items[-last:]]
        metrics["calibration"] = calibration_metrics(y[-last:], sigmoid(held_out))
    say(f"fitting logistic regression on {len(y)} exposures x {layout.width} features")
    clf = LogisticRegression(C=params.C, max_iter=400).fit(Xs, y)
    coef = clf.coef_[0].astype(np.float64)
    eta = clf.decision_function(Xs)
    del Xs
    items = ds.items
    if params.item_offsets:
        say("per-item terms")
        j = layout.position["item:offset"]
        offset, spread = item_offsets(eta, y, row_items, ds.items.n)
        eta = eta + offset[row_items]
        # The column's raw value is the term itself: weight one, no centring.
        coef[j], mu[j], sd[j] = 1.0, 0.0, 1.0
        items = replace(ds.items, offset=offset.astype(np.float32))
        metrics["item_offsets"] = {"sd": spread, "items": int(np.count_nonzero(offset))}
    metrics["train"] = calibration_metrics(y, sigmoid(eta))
    if last_history is None:  # pooled, or (never: y holds both kinds) no window filled
        say("pooled statistics for scoring")
        history = compute_history(
            event_pairs(ds),
            ds.items,
            ds.hcps,
            ds.vocab,
            float(t.max()) + 1.0,
            params.half_life_days,
            params.taste_shrink,
        )
    else:
        history = last_history
    # Only the pooled statistics: the per-HCP ones (over 100 MB at 100,000 HCPs)
    # are not the model's, and a training run holds this model through the
    # gate's and the evaluation's fits.
    history = history.pooled()
    return TrainedModel(
        vocab=ds.vocab,
        params=params,
        layout=layout,
        reducer=ds.reducer,
        items=items,
        history=history,
        coef=coef,
        intercept=float(clf.intercept_[0]),
        mu=mu,
        sd=sd,
        metrics=metrics,
        n_events=int(len(t)),
        n_hcps=int(len(np.unique(ds.events["hcp"]))),
    )


def item_offsets(
    eta: np.ndarray, y: np.ndarray, item: np.ndarray, n_items: int
) -> tuple[np.ndarray, float]:
    """Each item's term beyond the fitted logits, as a random effect: (terms, their sd).

    The term b of item j maximises its rows' likelihood under logit eta + b
    with a normal prior N(0, tau^2). tau is the one of ``OFFSET_SD_GRID`` with
    the highest marginal likelihood (each item's integral over b by Laplace's
    approximation), so an item that differs from its features' prediction
    only by noise gets almost nothing, and with no such effect at all tau
    ends at the grid's floor. An item with few rows stays near zero; an item
    never exposed gets exactly zero. One backfitting step after the
    regression: the regression's own columns stay as fitted.
    """
    ok = item >= 0
    eta, y, item = eta[ok], np.asarray(y, dtype=np.float64)[ok], item[ok]
    best = (-np.inf, np.zeros(n_items), 0.0)
    if len(item) == 0:
        return best[1], best[2]
    seen = np.bincount(item, minlength=n_items) > 0
    b = np.zeros(n_items)
    for tau in OFFSET_SD_GRID[::-1]:  # widest first: each fit starts from the last
        prior = 1.0 / tau**2
        for _newton in range(6):
            p = sigmoid(eta + b[item])
            curvature = np.bincount(item, p * (1.0 - p), minlength=n_items) + prior
            b += (np.bincount(item, y - p, minlength=n_items) - b * prior) / curvature
        shifted = eta + b[item]
        loglik = np.bincount(item, y * shifted - np.logaddexp(0.0, shifted), minlength=n_items)
        p = sigmoid(shifted)
        curvature = np.bincount(item, p * (1.0 - p), minlength=n_items) + prior
        # log of the integral over b: likelihood x prior at its peak, times its width
        marginal = loglik - 0.5 * b**2 * prior - 0.5 * np.log(tau**2 * curvature)
        total = float(marginal[seen].sum())
        if total > best[0]:
            best = (total, b.copy(), float(tau))
    # An item without rows keeps b = 0: its Newton steps only ever see the prior.
    return best[1], best[2]


# The spreads tried for the per-item prior (logit units), log-spaced.
OFFSET_SD_GRID = tuple(float(x) for x in np.geomspace(0.01, 2.0, 24))


def load_dataset(
    params: Params | None = None, progress: Progress | None = None, before=None
) -> Dataset:
    """Read everything a fit needs from the database."""
    params = params or Params()
    say = progress or (lambda _msg: None)
    say("reading vocabularies and HCP profiles")
    vocab = data.load_vocab()
    hcps = data.load_hcps(vocab)
    say("reading versions and embeddings")
    items, reducer = data.load_items(
        vocab,
        dim=params.embedding_dim,
        taste_dim=params.taste_dim,
        clauses=params.text_clauses,
    )
    say("reading events")
    events = data.load_events(before=before)
    return Dataset(vocab=vocab, items=items, reducer=reducer, hcps=hcps, events=events)
