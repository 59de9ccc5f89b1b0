"""Off-policy estimates of a target policy's click rate from logged propensities.

Each logged decision ``i`` showed action ``a_i`` with propensity ``p_i`` (the
logging policy's probability of that choice, stored with every recommendation
item) and got reward ``r_i`` (a click). The target policy would have shown
``a_i`` with probability ``pi_i``; a reward model predicts ``q_logged_i`` for the
logged action and ``q_target_i`` for the target's choice (its expectation
under the target policy). With importance weights ``w_i = pi_i / p_i``:

* **IPS**: ``mean(w r)``, unbiased when every propensity is right and positive.
* **SNIPS**: ``sum(w r) / sum(w)``, self-normalised: a little biased, much less
  variable when weights are large.
* **Doubly robust (DR)**: ``mean(q_target + w (r - q_logged))``: the reward
  model's value corrected by the weighted residuals; unbiased if either the
  propensities or the reward model are right, and with a good reward model
  its variance is far below IPS's.

Intervals are normal 95% intervals from each estimator's influence terms
(IPS and DR: the standard error of the per-decision terms; SNIPS: the delta
method). ``tests/affinity/test_ope.py`` checks that they cover a known true
value at about their nominal rate over repeated draws.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054


def _interval(mean: float, se: float) -> list[float]:
    return [mean - Z95 * se, mean + Z95 * se]


def estimate(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target_probabilities: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_target: np.ndarray | None = None,
) -> dict:
    """IPS, SNIPS and (with a reward model) DR estimates, each with a 95% interval."""
    r = np.asarray(rewards, dtype=np.float64)
    n = len(r)
    if n == 0:
        return {"n": 0, "ips": None, "snips": None, "dr": None}
    p = np.clip(np.asarray(propensities, dtype=np.float64), 1e-6, 1.0)
    w = np.asarray(target_probabilities, dtype=np.float64) / p
    root_n = np.sqrt(n)
    ips_terms = w * r
    ips = float(ips_terms.mean())
    ips_se = float(ips_terms.std(ddof=1) / root_n) if n > 1 else float("nan")
    out: dict = {
        "n": n,
        "ips": ips,
        "ips_stderr": ips_se if n > 1 else None,
        "ips_ci95": _interval(ips, ips_se) if n > 1 else None,
        "snips": None,
        "snips_ci95": None,
        "dr": None,
        "dr_ci95": None,
        "effective_n": float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0,
    }
    if w.sum() > 0:
        snips = float(ips_terms.sum() / w.sum())
        out["snips"] = snips
        if n > 1:
            se = float(np.sqrt(np.sum((w * (r - snips)) ** 2)) / w.sum())
            out["snips_ci95"] = _interval(snips, se)
    if q_logged is not None and q_target is not None:
        terms = np.asarray(q_target, dtype=np.float64) + w * (
            r - np.asarray(q_logged, dtype=np.float64)
        )
        dr = float(terms.mean())
        out["dr"] = dr
        if n > 1:
            se = float(terms.std(ddof=1) / root_n)
            out["dr_stderr"] = se
            out["dr_ci95"] = _interval(dr, se)
    return out
