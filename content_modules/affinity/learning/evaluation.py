"""Offline evaluation: hold out the latest events, compare the model with baselines, IPS/SNIPS."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from django.apps import apps
from django.db.models import Subquery

from content_modules.errors import Conflict

from ..models import EngagementEvent, EventType
from . import ope
from .columns import design_matrix
from .features import History, Pairs, Params, compute_history
from .training import Dataset, TrainedModel, event_pairs, fit, one_blas_thread, row_context

HOLDOUT_FRACTION = 0.2
K = 5
COLD_MAX_EXPOSURES = 2


def ndcg_at_k(gains_in_rank_order: np.ndarray, ideal_gains: np.ndarray, k: int = K) -> float:
    """NDCG@k of one ranked list against the best possible order of the same gains."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((gains_in_rank_order[:k] * discounts[: len(gains_in_rank_order[:k])]).sum())
    ideal = np.sort(ideal_gains)[::-1][:k]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def ranking_metrics(groups: np.ndarray, y: np.ndarray, score: np.ndarray, k: int = K) -> dict:
    """Mean NDCG@k and recall@k over HCPs with a positive among at least two items."""
    from sklearn.metrics import roc_auc_score

    out: dict = {}
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, score))
    order = np.lexsort((-score, groups))
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    ndcgs, recalls = [], []
    for s, e in zip(starts, ends, strict=True):
        gains = y[order[s:e]]
        positives = gains.sum()
        # Ranking needs at least two items and something to find.
        if positives == 0 or e - s < 2:
            continue
        ndcgs.append(ndcg_at_k(gains, gains, k))
        recalls.append(float(gains[:k].sum() / positives))
    out[f"ndcg@{k}"] = float(np.mean(ndcgs)) if ndcgs else None
    out[f"recall@{k}"] = float(np.mean(recalls)) if recalls else None
    out["n_hcps"] = len(ndcgs)
    return out


def baseline_scores(pairs: Pairs, ds: Dataset, history, seed: int = 0) -> dict[str, np.ndarray]:
    """Scores of the three baselines for held-out pairs, from the training window only."""
    rng = np.random.default_rng(seed)
    a = 5.0
    r0 = history.global_rate
    r_item = (history.item_p + a * r0) / (history.item_n + a)
    n_groups = history.group_item_n.shape[0]
    g = np.where(ds.hcps.group[pairs.hcp] >= 0, ds.hcps.group[pairs.hcp], n_groups - 1)
    r_group_item = (history.group_item_p[g, pairs.item] + a * r_item[pairs.item]) / (
        history.group_item_n[g, pairs.item] + a
    )
    return {
        "random": rng.random(len(pairs)),
        "popularity": r_item[pairs.item],
        "group_popularity": r_group_item,
    }


# --- the regressions a data scientist builds first ----------------------------------

# Block scales play the part of per-block regularisation: scaling a block's
# columns by s divides its effective L2 penalty by s squared.
REGRESSION_C = 0.3
REGRESSION_TEXT_DIM = 8
REGRESSION_SCALES = {"tags": 1.0, "cross": 1.0, "item": 1.0, "text": 1.0, "text_hcp": 0.1}


def _cross(values: np.ndarray, codes: np.ndarray, n_codes: int, scale: float = 1.0):
    """Sparse (rows, n_codes * d): each row's values placed in the block of its code."""
    from scipy import sparse

    n, d = values.shape
    ok = np.flatnonzero(codes >= 0)
    rows = np.repeat(ok, d)
    cols = (codes[ok, None].astype(np.int64) * d + np.arange(d)[None, :]).ravel()
    vals = (values[ok] * scale).ravel()
    keep = vals != 0
    return sparse.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, max(n_codes, 1) * d))


REGRESSION_CHUNK = 100_000


def regression_features(pairs: Pairs, ds: Dataset, *, text: bool, text_dim: int = 0):
    """Sparse design of the baseline regressions for pairs (no history, no pooled rates).

    Tag one-hots, their crosses with specialty and with segment, specialty and
    segment, and a per-module term; with ``text``, the first ``text_dim``
    principal components of the module's text embedding, crossed with
    specialty, with segment and with the HCP.

    Built ``REGRESSION_CHUNK`` pairs at a time: the same matrix, without the
    dense and coordinate temporaries of every pair at once (at 650,000 pairs
    they came to over 1 GB).
    """
    from scipy import sparse

    if len(pairs) <= REGRESSION_CHUNK:
        return _regression_features(pairs, ds, text=text, text_dim=text_dim)
    return sparse.vstack(
        [
            _regression_features(
                pairs.select(slice(start, start + REGRESSION_CHUNK)),
                ds,
                text=text,
                text_dim=text_dim,
            )
            for start in range(0, len(pairs), REGRESSION_CHUNK)
        ],
        format="csr",
    )


def _regression_features(pairs: Pairs, ds: Dataset, *, text: bool, text_dim: int = 0):
    from scipy import sparse

    sc = REGRESSION_SCALES
    v = ds.vocab
    item, h = pairs.item, pairs.hcp
    spec, seg = ds.hcps.specialty[h], ds.hcps.segment[h]
    tags = np.hstack(
        [
            ds.items.tag_matrix(kind, len(getattr(v, kind)), item)
            for kind in ("message", "theme", "tonality", "format")
        ]
    ).astype(np.float64)
    one = np.ones((len(pairs), 1))
    blocks = [
        sparse.csr_matrix(tags * sc["tags"]),
        _cross(tags, spec, len(v.specialty), sc["cross"]),
        _cross(tags, seg, len(v.segment), sc["cross"]),
        _cross(one, spec, len(v.specialty)),
        _cross(one, seg, len(v.segment)),
        _cross(one, item, ds.items.n, sc["item"]),
    ]
    if text:
        z = ds.items.z[item, :text_dim].astype(np.float64)
        blocks += [
            sparse.csr_matrix(z * sc["text"]),
            _cross(z, spec, len(v.specialty), sc["text"]),
            _cross(z, seg, len(v.segment), sc["text"]),
            _cross(z, h, len(ds.hcps.ids), sc["text_hcp"]),
        ]
    return sparse.hstack(blocks, format="csr")


def regression_baselines(
    train: Pairs, pairs: Pairs, ds: Dataset, *, text_dim: int = REGRESSION_TEXT_DIM
) -> dict[str, np.ndarray]:
    """Scores of the tag-only and the text-aware logistic regressions, fitted on ``train``."""
    with one_blas_thread():
        return _regression_baselines(train, pairs, ds, text_dim=text_dim)


def _regression_baselines(train: Pairs, pairs: Pairs, ds: Dataset, *, text_dim: int):
    from sklearn.linear_model import LogisticRegression

    out: dict[str, np.ndarray] = {}
    if len(train) == 0 or len(np.unique(train.y)) < 2:
        return out
    dim = min(text_dim, ds.items.z.shape[1])
    for name, text in (("tag_regression", False), ("text_regression", dim > 0)):
        if name == "text_regression" and not text:
            continue
        clf = LogisticRegression(C=REGRESSION_C, max_iter=500)
        clf.fit(regression_features(train, ds, text=text, text_dim=dim), train.y)
        X = regression_features(pairs, ds, text=text, text_dim=dim)
        out[name] = clf.decision_function(X)
    return out


def model_scores(model: TrainedModel, pairs: Pairs, ds: Dataset, history) -> np.ndarray:
    """The model's probabilities for pairs, with HCP history as of ``history.ref_time``."""
    out = np.zeros(len(pairs))
    step = 50_000
    for start in range(0, len(pairs), step):
        part = Pairs(
            *(
                arr[start : start + step]
                for arr in (pairs.hcp, pairs.item, pairs.t, pairs.y, pairs.channel)
            )
        )
        ctx = row_context(part, ds.hcps, history, model.params)
        # The model's item table: the dataset's, with the per-item terms its fit learned.
        X = design_matrix(ctx, model.items, history, ds.vocab, model.layout, model.params)
        out[start : start + step] = model.predict(X)
    return out


@dataclass
class Holdout:
    """A time-based holdout: the split, the history at its cutoff and the model fitted before it.

    The gate and the evaluation hold out the same latest share of events with
    the same recipe, so one ``Holdout`` serves both: the fit before the cutoff
    is deterministic, and doing it twice (as they did) cost a quarter of a
    training run's CPU. The fit and its scores are made on first use (the gate
    does not fit when the holdout has nothing to rank).
    """

    ds: Dataset
    params: Params
    fraction: float
    cutoff: float
    train_mask: np.ndarray
    train_ds: Dataset
    train_pairs: Pairs  # the exposures before the cutoff (history and regressions)
    test: Pairs
    _history: History | None = field(default=None, repr=False)
    _model: TrainedModel | None = field(default=None, repr=False)
    _error: Conflict | None = field(default=None, repr=False)
    _scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def history(self) -> History:
        """The statistics as of the cutoff, for scoring the held-out exposures.

        Made on first use, after the fit: a history holds every HCP's
        statistics (over 100 MB at 100,000 HCPs), needless during the fit.
        """
        if self._history is None:
            self._history = compute_history(
                self.train_pairs,
                self.ds.items,
                self.ds.hcps,
                self.ds.vocab,
                self.cutoff,
                self.params.half_life_days,
                self.params.taste_shrink,
            )
        return self._history

    @property
    def fitted(self) -> bool:
        return self._model is not None or self._error is not None

    def model(self) -> TrainedModel:
        """The recipe fitted on the events before the cutoff (raises ``Conflict``)."""
        if self._error is not None:
            raise self._error
        if self._model is None:
            try:
                self._model = fit(self.train_ds, self.params, pooled=False)
            except Conflict as exc:
                self._error = exc
                raise
        return self._model

    def scores(self) -> np.ndarray:
        """That model's probabilities for the held-out exposures."""
        if self._scores is None:
            self._scores = model_scores(self.model(), self.test, self.ds, self.history)
        return self._scores


def holdout_split(
    ds: Dataset, params: Params, fraction: float = HOLDOUT_FRACTION
) -> Holdout | None:
    """The latest ``fraction`` of events held out (None when there are too few events)."""
    t = ds.events["t"]
    if len(t) < 10:
        return None
    cutoff = float(np.quantile(t, 1.0 - fraction))
    train_mask = t < cutoff
    train_ds = Dataset(
        vocab=ds.vocab,
        items=ds.items,
        reducer=ds.reducer,
        hcps=ds.hcps,
        events={k: v[train_mask] for k, v in ds.events.items()},
    )
    return Holdout(
        ds=ds,
        params=params,
        fraction=fraction,
        cutoff=cutoff,
        train_mask=train_mask,
        train_ds=train_ds,
        train_pairs=event_pairs(ds, train_mask),
        test=event_pairs(ds, ~train_mask),
    )


def evaluate_dataset(
    ds: Dataset,
    params: Params | None = None,
    progress: Callable[[str], None] | None = None,
    holdout: float = HOLDOUT_FRACTION,
    ablation: bool = True,
    split: Holdout | None = None,
) -> dict:
    """Fit on the earliest events, score the latest ``holdout`` share, compare with baselines.

    Beside the model: random, popularity, popularity within specialty x
    segment, the tag-only and the text-aware regressions and (with
    ``ablation``) the same model without its text features. ``split`` is a
    holdout already made for ``params`` (the gate's), whose fit is reused.
    """
    from .training import calibration_metrics

    params = params or Params()
    if split is not None and (split.params != params or split.fraction != holdout):
        split = None
    split = split or holdout_split(ds, params, holdout)
    if split is None:
        raise Conflict("Too few engagement events to evaluate.", field="events")
    say = progress or (lambda _msg: None)
    if not split.fitted:
        say("evaluation: fitting the model on the events before the holdout")
    model = split.model()
    history, test, train_pairs = split.history, split.test, split.train_pairs
    train_ds, train_mask, cutoff = split.train_ds, split.train_mask, split.cutoff
    say(f"evaluation: scoring {len(test)} held-out exposures")
    scores = {"model": split.scores()}
    scores.update(baseline_scores(test, ds, history, params.seed))
    say("evaluation: the tag-only and text-aware regressions")
    scores.update(regression_baselines(train_pairs, test, ds))
    if ablation and params.text_features:
        say("evaluation: the model without its text features")
        no_text = replace(params, text_features=False)
        without = fit(train_ds, no_text, pooled=False)
        scores["model_without_text"] = model_scores(without, test, ds, history)
        del without
    exposures = np.bincount(train_pairs.hcp, minlength=len(ds.hcps.ids))
    cold = exposures[test.hcp] <= COLD_MAX_EXPOSURES
    results: dict = {
        "holdout_fraction": holdout,
        "cutoff": cutoff,
        "n_train_events": int(train_mask.sum()),
        "n_test_exposures": int(len(test)),
        "test_positive_rate": float(test.y.mean()) if len(test) else None,
        "methods": {},
    }
    for name, s in scores.items():
        entry = ranking_metrics(test.hcp, test.y, s)
        if cold.any():
            entry["cold"] = ranking_metrics(test.hcp[cold], test.y[cold], s[cold])
        results["methods"][name] = entry
    results["calibration"] = calibration_metrics(test.y, scores["model"])
    results["off_policy"] = off_policy_estimates(model, ds, history)
    return results


# --- off-policy estimates from logged propensities ----------------------------------


def logged_propensities() -> list[dict]:
    """Logged recommendation items that got feedback, with their propensity and outcome.

    The one place that reads the recommendation-items table (the delivery
    app's ``RecommendationItem``): answers an empty list while that app is
    not installed. Only recommendations that at least one event refers to
    count (the others may never have been delivered); an item is a success
    when a ``clicked`` event carries its recommendation id and module.
    """
    if not apps.is_installed("content_modules.delivery"):
        return []
    item_model = apps.get_model("delivery", "RecommendationItem")
    with_feedback = (
        EngagementEvent.objects.filter(recommendation_id__isnull=False)
        .values("recommendation_id")
        .distinct()
    )
    rows = list(
        item_model.objects.filter(recommendation_id__in=Subquery(with_feedback)).values_list(
            "recommendation_id", "module_id", "propensity", "rank", "recommendation__hcp_id"
        )
    )
    if not rows:
        return []
    clicks = set(
        EngagementEvent.objects.filter(
            recommendation_id__in={r[0] for r in rows}, type=EventType.CLICKED
        ).values_list("recommendation_id", "module_id")
    )
    return [
        {
            "recommendation": str(rec),
            "module": module,
            "propensity": float(propensity),
            "rank": rank,
            "hcp": hcp,
            "clicked": int((rec, module) in clicks),
        }
        for rec, module, propensity, rank, hcp in rows
        if propensity and hcp is not None
    ]


def ips_snips(
    rewards: np.ndarray, propensities: np.ndarray, target_probabilities: np.ndarray
) -> dict:
    """IPS and self-normalised IPS (SNIPS) estimates of a target policy's mean reward
    (``ope.estimate`` adds intervals and the doubly robust estimate)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    p = np.clip(np.asarray(propensities, dtype=np.float64), 1e-6, 1.0)
    w = np.asarray(target_probabilities, dtype=np.float64) / p
    n = len(rewards)
    if n == 0:
        return {"n": 0, "ips": None, "snips": None}
    terms = w * rewards
    return {
        "n": n,
        "ips": float(terms.mean()),
        "ips_stderr": float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
        "snips": float(terms.sum() / w.sum()) if w.sum() > 0 else None,
    }


OPE_MAX_DECISIONS = 5_000  # logged recommendations read per estimate (a seeded sample)


def off_policy_estimates(
    model: TrainedModel, ds: Dataset, history, logged: list[dict] | None = None
) -> dict | None:
    """IPS, SNIPS and doubly robust click rate at rank 1 of 'show the model's favourite of
    each logged slate', with 95% intervals (``ope.estimate``).

    The target policy picks, among the items a logged recommendation showed,
    the one the model scores highest; the logged rank-1 item then counts with
    weight 1/propensity when it is that pick, else 0. (The full candidate set
    of a past request is not stored, so the choice is made within its slate.)
    """
    logged = logged_propensities() if logged is None else logged
    if not logged:
        return None
    by_rec: dict[str, list[dict]] = defaultdict(list)
    for row in logged:
        by_rec[row["recommendation"]].append(row)
    if len(by_rec) > OPE_MAX_DECISIONS:
        keys = sorted(by_rec)
        chosen = np.random.default_rng(0).choice(len(keys), OPE_MAX_DECISIONS, replace=False)
        by_rec = {keys[i]: by_rec[keys[i]] for i in sorted(chosen)}
    module_to_item = {int(m): i for i, m in enumerate(ds.items.module_ids)}
    rewards: list[int] = []
    props: list[float] = []
    target: list[float] = []
    q_logged: list[float] = []
    q_target: list[float] = []
    logged_rewards: list[int] = []
    for rows in by_rec.values():
        rows.sort(key=lambda r: r["rank"])
        hcp_row = ds.hcps.rows(np.array([rows[0]["hcp"]]))[0]
        items = np.array([module_to_item.get(int(r["module"]), -1) for r in rows])
        logged_rewards.extend(r["clicked"] for r in rows)
        if hcp_row < 0 or items[0] < 0:
            continue
        known = items >= 0
        n = int(known.sum())
        pairs = Pairs(
            np.full(n, hcp_row),
            items[known],
            np.zeros(n),
            np.zeros(n, np.float32),
            np.full(n, -1, np.int16),
        )
        scores = model_scores(model, pairs, ds, history)
        best = int(np.argmax(scores))
        rewards.append(rows[0]["clicked"])
        props.append(rows[0]["propensity"])
        target.append(1.0 if best == 0 else 0.0)
        # The model itself is the reward model of the doubly robust estimate.
        q_logged.append(float(scores[0]))
        q_target.append(float(scores[best]))
    estimate = ope.estimate(
        np.array(rewards),
        np.array(props),
        np.array(target),
        q_logged=np.array(q_logged),
        q_target=np.array(q_target),
    )
    estimate["logged_click_rate"] = float(np.mean(logged_rewards)) if logged_rewards else None
    estimate["n_recommendations"] = len(by_rec)
    return estimate
