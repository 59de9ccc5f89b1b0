"""stats.py against simulation: interval coverage, always-valid coverage, sample sizes."""

from __future__ import annotations

import numpy as np
import pytest

from content_modules.experiments import stats


def test_wilson_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    p, n, reps = 0.05, 400, 4000
    hits = rng.binomial(n, p, size=reps)
    covered = 0
    for s in hits:
        lo, hi = stats.wilson(int(s), n)
        covered += lo <= p <= hi
    assert 0.93 <= covered / reps <= 0.97


def test_newcombe_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    p1, p2, n1, n2, reps = 0.04, 0.06, 600, 500, 4000
    s1, s2 = rng.binomial(n1, p1, size=reps), rng.binomial(n2, p2, size=reps)
    covered = 0
    for a, b in zip(s1, s2, strict=True):
        lo, hi = stats.newcombe(int(a), n1, int(b), n2)
        covered += lo <= p2 - p1 <= hi
    assert 0.93 <= covered / reps <= 0.97


def test_known_values():
    # Newcombe (1998) example: 56/70 vs 48/80 -> difference 0.2, interval 0.0524 to 0.3339
    lo, hi = stats.newcombe(48, 80, 56, 70)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)
    lo, hi = stats.wilson(81, 263)
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)
    # 5% -> 6% at alpha 0.05, power 0.8: about 8,150 per arm (pooled normal approximation)
    assert stats.sample_size_per_arm(0.05, 0.01) == pytest.approx(8158, abs=5)
    assert stats.wilson(0, 0) is None and stats.newcombe(1, 0, 1, 2) is None


def test_always_valid_rate_interval_holds_at_every_peek_at_least_95_percent_of_the_time():
    # Peeking after every 50 deliveries up to 5,000: a fixed-n interval would be crossed
    # far more often than 5% of the time; the confidence sequence must not be.
    rng = np.random.default_rng(3)
    p, n, reps = 0.05, 5000, 400
    peeks = range(50, n + 1, 50)
    ever_missed = naive_missed = 0
    for _ in range(reps):
        cum = np.cumsum(rng.random(n) < p)
        missed = naive = False
        for t in peeks:
            s = int(cum[t - 1])
            lo, hi = stats.rate_cs(s, t)
            missed |= not lo <= p <= hi
            wlo, whi = stats.wilson(s, t)
            naive |= not wlo <= p <= whi
        ever_missed += missed
        naive_missed += naive
    assert ever_missed / reps <= 0.05
    assert naive_missed / reps > 0.15  # why it is needed


def test_always_valid_lift_interval_holds_at_every_peek_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    p1, p2, n, reps = 0.05, 0.06, 4000, 300
    ever_missed = 0
    for _ in range(reps):
        a, b = np.cumsum(rng.random(n) < p1), np.cumsum(rng.random(n) < p2)
        missed = False
        for t in range(100, n + 1, 100):
            lo, hi = stats.lift_cs(int(a[t - 1]), t, int(b[t - 1]), t)
            missed |= not lo <= p2 - p1 <= hi
        ever_missed += missed
    assert ever_missed / reps <= 0.05


def test_always_valid_interval_is_wider_than_the_fixed_one_but_shrinks():
    fixed = stats.wilson(100, 2000)
    valid = stats.rate_cs(100, 2000)
    assert valid[0] < fixed[0] and valid[1] > fixed[1]
    later = stats.rate_cs(1000, 20000)
    assert later[1] - later[0] < valid[1] - valid[0]


def test_sample_size_detects_the_lift_with_80_percent_power_in_simulation():
    rng = np.random.default_rng(5)
    p1, lift = 0.10, 0.03
    n = stats.sample_size_per_arm(p1, lift)
    reps, detected = 2000, 0
    a, b = rng.binomial(n, p1, size=reps), rng.binomial(n, p1 + lift, size=reps)
    for s1, s2 in zip(a, b, strict=True):
        lo, _ = stats.newcombe(int(s1), n, int(s2), n)
        detected += lo > 0
    assert 0.76 <= detected / reps <= 0.84
    assert stats.detectable_lift(p1, n) == pytest.approx(lift, rel=0.05)


def test_verdict_sentences():
    assert stats.verdict("A", "B", 0.008, (0.002, 0.014)) == (
        "arm B ahead of A by 0.8 points, 95% interval 0.2 to 1.4"
    )
    assert "not yet significant" in stats.verdict("A", "B", 0.001, (-0.004, 0.006))
    assert "behind A by 0.8 points" in stats.verdict("A", "B", -0.008, (-0.014, -0.002))
    assert stats.verdict("A", "B", None, None) == "arm B: no deliveries yet"
