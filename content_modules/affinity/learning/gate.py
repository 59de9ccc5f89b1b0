"""Champion / challenger: may a newly trained model replace the one in use?

Pure numpy on a loaded ``Dataset``: no database writes, no Celery, no audit
(``affinity.training_runs`` stores the decision and acts on it).

The test. The latest ``HOLDOUT_FRACTION`` of events by time is held out; the
challenger's configuration is fitted on the events before the cutoff and
scores the held-out exposures, beside

* popularity within specialty x segment (each group's click rate per item,
  shrunk to the item's rate: ``evaluation.baseline_scores``' group popularity),
* the active model's configuration (its stored ``params``), refitted on the
  same training events by the same code: the recipe in use against the new
  recipe, on equal data. When the two configurations are equal the fit is the
  same (it is deterministic), so the comparison is a tie by construction.

Both metrics are per HCP: NDCG@5 over HCPs with a positive among at least two
held-out items, log-loss averaged per HCP over its held-out exposures. The
differences (challenger minus other, log-loss sign flipped so that positive
is better) are bootstrapped over HCPs (``BOOTSTRAP`` resamples of the HCPs,
paired: one resample draws the same HCPs for both methods), giving the
spread ``sd`` of each mean difference.

The margin is ``Z * sd`` with ``Z = 1.645``: the one-sided 95% bound of the
difference's sampling noise, so a win must be one the holdout could not have
produced by chance. The spread depends on how many HCPs the holdout ranks,
which is why the margin is measured, not fixed. Measured (sd of the mean
difference against group popularity, NDCG@5 / log-loss):

* the demo (``seed_demo``, 300 HCPs, 142 ranked): 0.020 / 0.006, margins
  0.033 / 0.010; the model's differences were +0.066 / +0.022: passed;
* the same demo with 120 HCPs (52 ranked): 0.040 / 0.020, margins 0.065 /
  0.033; differences +0.004 / -0.016: rejected (too little evidence);
* ``tests/affinity/test_learning.build_world`` (60 HCPs, a preference that
  group popularity captures exactly): 0.022 / 0.043; differences -0.011 /
  -0.090: rejected, rightly.

A fixed margin of 0.01 NDCG (the bench's seed-to-seed noise is up to 0.02)
would be pure noise on the demo's holdout and needlessly strict on the
bench's 100,000 HCPs.

The rule.

* Against popularity the challenger must *win*: both differences above their
  margin (a model that is not clearly better than counting clicks per group
  has no reason to be served, and on the demo data the previous model was not).
* Against the active model it must *not lose*: neither difference below minus
  its margin. A retrain of the same recipe on fresher data ties by
  construction, and demanding a significant win there would freeze the model
  in use forever; a recipe that is worse beyond noise is stopped.
* With no active model, only the popularity test applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from content_modules.errors import Conflict

from .evaluation import (
    HOLDOUT_FRACTION,
    Holdout,
    K,
    baseline_scores,
    holdout_split,
    model_scores,
    ndcg_at_k,
)
from .features import Params, compute_history
from .training import Dataset, fit

Z = 1.645
BOOTSTRAP = 1000
METRICS = ("ndcg@5", "log_loss")


@dataclass
class Decision:
    """The gate's verdict on a challenger, with every figure behind it."""

    passed: bool
    reason: str
    figures: dict = field(default_factory=dict)


def per_hcp_ndcg(hcp: np.ndarray, y: np.ndarray, score: np.ndarray, k: int = K) -> dict:
    """NDCG@k per HCP with a positive among at least two held-out items."""
    order = np.lexsort((-score, hcp))
    h_sorted = hcp[order]
    starts = np.flatnonzero(np.r_[True, h_sorted[1:] != h_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    out = {}
    for s, e in zip(starts, ends, strict=True):
        gains = y[order[s:e]]
        if e - s >= 2 and gains.sum() > 0:
            out[int(h_sorted[s])] = ndcg_at_k(gains, gains, k)
    return out


def per_hcp_log_loss(hcp: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """Mean log-loss of each HCP's held-out exposures."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    keys, inverse = np.unique(hcp, return_inverse=True)
    sums = np.bincount(inverse, weights=loss)
    counts = np.bincount(inverse)
    return {int(k): float(v) for k, v in zip(keys, sums / counts, strict=True)}


def _paired(a: dict, b: dict) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(a.keys() & b.keys())
    return np.array([a[k] for k in keys]), np.array([b[k] for k in keys])


def compare(mine: dict, other: dict, *, higher_is_better: bool, rng: np.random.Generator) -> dict:
    """Mean per-HCP difference (positive: mine is better), its bootstrap sd and the margin."""
    a, b = _paired(mine, other)
    if len(a) == 0:
        return {"n_hcps": 0, "diff": None, "sd": None, "margin": None}
    d = (a - b) if higher_is_better else (b - a)
    # The resamples as int32 (the same draws as int64) and their means a few at a
    # time: at 60,000 HCPs all of them at once, indices and values, were 1 GB.
    idx = rng.integers(0, len(d), size=(BOOTSTRAP, len(d)), dtype=np.int32)
    step = 50
    means = np.concatenate([d[idx[i : i + step]].mean(axis=1) for i in range(0, BOOTSTRAP, step)])
    del idx
    sd = float(means.std(ddof=1)) if len(d) > 1 else float("inf")
    return {
        "n_hcps": len(d),
        "mine": float(a.mean()),
        "other": float(b.mean()),
        "diff": float(d.mean()),
        "sd": sd,
        "margin": Z * sd,
    }


def _versus(name: str, mine: dict, other: dict, *, must_win: bool, rng) -> tuple[bool, dict, str]:
    """Compare on both metrics; answer (passed, figures, why it failed)."""
    figures: dict[str, Any] = {
        "ndcg@5": compare(mine["ndcg@5"], other["ndcg@5"], higher_is_better=True, rng=rng),
        "log_loss": compare(mine["log_loss"], other["log_loss"], higher_is_better=False, rng=rng),
    }
    failures = []
    for metric, f in figures.items():
        if f["diff"] is None:
            failures.append(f"no held-out HCP to compare {metric} on")
        elif must_win and not f["diff"] > f["margin"]:
            failures.append(
                f"{metric} {f['mine']:.4f} vs {name} {f['other']:.4f}: "
                f"improvement {f['diff']:+.4f} is not above the margin {f['margin']:.4f}"
            )
        elif not must_win and f["diff"] < -f["margin"]:
            failures.append(
                f"{metric} {f['mine']:.4f} vs {name} {f['other']:.4f}: "
                f"worse by {-f['diff']:.4f}, beyond the margin {f['margin']:.4f}"
            )
    figures["passed"] = not failures
    figures["rule"] = "win by the margin" if must_win else "not worse beyond the margin"
    return not failures, figures, "; ".join(failures)


def challenge(
    ds: Dataset,
    params: Params,
    *,
    champion_params: Params | None = None,
    champion_version: str = "",
    progress: Callable[[str], None] | None = None,
    holdout: float = HOLDOUT_FRACTION,
    seed: int = 0,
    split: Holdout | None = None,
) -> Decision:
    """Test the challenger configuration ``params`` against popularity and the champion.

    ``split`` is the holdout to use when the caller made it (to share its fit
    with the evaluation); it must be ``params``' with the ``holdout`` share.
    """
    say = progress or (lambda _msg: None)
    if split is None or split.params != params or split.fraction != holdout:
        split = holdout_split(ds, params, holdout)
    if split is None:
        return Decision(False, "too few engagement events to hold any out", {})
    train_ds, test = split.train_ds, split.test
    figures: dict = {
        "method": "time-based holdout, per-HCP bootstrap of the paired difference",
        "holdout_fraction": holdout,
        "cutoff": split.cutoff,
        "n_train_events": int(split.train_mask.sum()),
        "n_test_exposures": int(len(test)),
        "z": Z,
        "bootstrap": BOOTSTRAP,
    }
    if len(test) == 0 or test.y.sum() == 0:
        return Decision(False, "the held-out events hold no engagement to rank", figures)
    say("gate: fitting the challenger on the events before the holdout")
    try:
        split.model()
    except Conflict as exc:
        return Decision(
            False, f"the challenger cannot be fitted before the holdout: {exc}", figures
        )

    def metrics_of(p: np.ndarray) -> dict:
        return {
            "ndcg@5": per_hcp_ndcg(test.hcp, test.y, p),
            "log_loss": per_hcp_log_loss(test.hcp, test.y, p),
        }

    say("gate: scoring the holdout")
    history = split.history
    mine = metrics_of(split.scores())
    popularity = metrics_of(baseline_scores(test, ds, history, params.seed)["group_popularity"])
    rng = np.random.default_rng(seed)
    ok_pop, figures["popularity"], why_pop = _versus(
        "group popularity", mine, popularity, must_win=True, rng=rng
    )
    failures = (
        [f"does not beat popularity within specialty x segment: {why_pop}"] if not ok_pop else []
    )
    figures["champion"] = None
    if champion_params is not None:
        if champion_params == params:
            # A deterministic fit of the same recipe on the same events: the same model.
            champion_metrics = mine
            refit = "same configuration as the challenger"
        else:
            say("gate: refitting the active model's configuration on the same events")
            champion = fit(train_ds, champion_params, pooled=False)
            champion_history = compute_history(
                split.train_pairs,
                ds.items,
                ds.hcps,
                ds.vocab,
                split.cutoff,
                champion_params.half_life_days,
                champion_params.taste_shrink,
            )
            champion_metrics = metrics_of(model_scores(champion, test, ds, champion_history))
            refit = "its configuration refitted on the same events"
        ok_champ, figures["champion"], why_champ = _versus(
            f"active model {champion_version}", mine, champion_metrics, must_win=False, rng=rng
        )
        figures["champion"].update(model_version=champion_version, compared_as=refit)
        if not ok_champ:
            failures.append(f"worse than the active model {champion_version}: {why_champ}")
    figures["challenger"] = {m: float(np.mean(list(mine[m].values()))) for m in METRICS}
    if failures:
        return Decision(False, "; ".join(failures), figures)
    versus = "popularity within specialty x segment"
    if champion_params is not None:
        versus += f" and is not worse than the active model {champion_version}"
    return Decision(True, f"beats {versus}", figures)
