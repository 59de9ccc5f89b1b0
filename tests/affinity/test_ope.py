"""Off-policy estimators against a world whose true policy value is known."""

from __future__ import annotations

import numpy as np
import pytest

from content_modules.affinity.learning import ope

K = 5  # actions per decision


def draw(rng: np.random.Generator, n: int, epsilon: float, model_noise: float):
    """One log of n decisions from an epsilon-greedy logger, and the target's true value.

    Each context has its own true click probability per action; the logger is
    greedy on a noisy view of them, exploring with probability epsilon; the
    target is greedy on a different noisy view. The reward model is a third,
    imperfect one (DR must not need it right).
    """
    truth = rng.beta(1.2, 10.0, size=(n, K))
    # The logger (an older model) often disagrees with the target (a new one), as a
    # challenger's log does: with few disagreements, a handful of heavy weights carry
    # IPS and normal intervals under-cover (effective_n says so).
    logger_best = np.argmax(truth + rng.normal(0, 0.15, size=(n, K)), axis=1)
    target_best = np.argmax(truth + rng.normal(0, 0.02, size=(n, K)), axis=1)
    explore = rng.random(n) < epsilon
    action = np.where(explore, rng.integers(0, K, n), logger_best)
    propensity = np.where(action == logger_best, 1 - epsilon + epsilon / K, epsilon / K)
    reward = (rng.random(n) < truth[np.arange(n), action]).astype(float)
    q = np.clip(truth + rng.normal(0, model_noise, size=(n, K)), 0, 1)
    rows = np.arange(n)
    return {
        "rewards": reward,
        "propensities": propensity,
        "target_probabilities": (action == target_best).astype(float),
        "q_logged": q[rows, action],
        "q_target": q[rows, target_best],
        "true_value": float(truth[rows, target_best].mean()),
    }


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_intervals_cover_the_true_value_at_about_their_nominal_rate(name):
    rng = np.random.default_rng(7)
    covered, draws = 0, 300
    for _ in range(draws):
        log = draw(rng, n=3000, epsilon=0.3, model_noise=0.05)
        truth = log.pop("true_value")
        lo, hi = ope.estimate(**log)[f"{name}_ci95"]
        covered += lo <= truth <= hi
    rate = covered / draws
    # 95% nominal; over 300 draws the binomial sd of the rate is 1.3 points.
    assert 0.91 <= rate <= 0.99, rate


def test_doubly_robust_is_tighter_than_ips_with_a_useful_reward_model():
    rng = np.random.default_rng(3)
    log = draw(rng, n=5000, epsilon=0.2, model_noise=0.03)
    log.pop("true_value")
    out = ope.estimate(**log)
    width = {k: out[f"{k}_ci95"][1] - out[f"{k}_ci95"][0] for k in ("ips", "dr")}
    # Bernoulli noise stays in every estimator; DR removes the reward model's part.
    assert width["dr"] < 0.95 * width["ips"]
    assert out["effective_n"] < out["n"]


def test_estimates_are_unbiased_on_average():
    rng = np.random.default_rng(11)
    errors = {"ips": [], "snips": [], "dr": []}
    for _ in range(100):
        log = draw(rng, n=2000, epsilon=0.3, model_noise=0.08)
        truth = log.pop("true_value")
        out = ope.estimate(**log)
        for k in errors:
            errors[k].append(out[k] - truth)
    for k, e in errors.items():
        # Mean error within 3 standard errors of zero.
        assert abs(np.mean(e)) < 3 * np.std(e) / np.sqrt(len(e)), k


def test_an_empty_log_gives_no_estimate():
    out = ope.estimate(np.zeros(0), np.zeros(0), np.zeros(0))
    assert out == {"n": 0, "ips": None, "snips": None, "dr": None}


def test_the_gate_rejects_only_a_challenger_clearly_worse_on_enough_logged_exploration():
    from content_modules.affinity.training_runs import off_policy_verdict

    def est(dr, lo, hi, n=1000, eff=400.0):
        return {"dr": dr, "dr_ci95": [lo, hi], "n": n, "effective_n": eff}

    active = est(0.12, 0.11, 0.13)
    worse = off_policy_verdict(est(0.08, 0.07, 0.09), active, minimum=500)
    assert worse.startswith("off-policy: estimated click rate 0.0800")
    assert "below the active model's 0.1200" in worse
    # Overlapping the active estimate, too few decisions, or too little exploration: no say
    assert off_policy_verdict(est(0.10, 0.07, 0.125), active, minimum=500) == ""
    assert off_policy_verdict(est(0.08, 0.07, 0.09, n=200), active, minimum=500) == ""
    assert off_policy_verdict(est(0.08, 0.07, 0.09, eff=20.0), active, minimum=500) == ""
    assert off_policy_verdict(est(0.08, 0.07, 0.09), None, minimum=500) == ""
