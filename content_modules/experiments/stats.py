"""Statistics of an experiment: rates, lifts, always-valid intervals, sample sizes.

Pure functions of counts (no database), each checked against simulation in
``tests/experiments/test_stats.py``.

- ``wilson``: the Wilson score interval of a binomial rate (fixed sample size).
- ``newcombe``: Newcombe's hybrid score interval (his method 10) of the
  difference of two independent rates, built from their Wilson intervals.
- ``rate_cs`` and ``lift_cs``: always-valid 95% intervals (confidence
  sequences), which hold at every sample size at once, so reading results
  while the experiment runs, and stopping when they look good, keeps the
  error rate. The boundary is the two-sided normal mixture of Howard, Ramdas,
  McAuliffe and Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic
  confidence sequences", eq. for the normal mixture), used as the asymptotic
  confidence sequence of Waudby-Smith, Arnold, Wu, Howard and Ramdas (2023,
  "Time-uniform central limit theory and asymptotic confidence sequences"):
  every rate mu with |S_t - t mu| <= sqrt(mu (1 - mu)) * sqrt((t + rho)
  log((t + rho) / (rho alpha^2))), which is Wilson's interval with the
  multiplier sqrt((1 + rho/t) log((t + rho)/(rho alpha^2))) in place of 1.96.
  For a lift, Newcombe's combination of the two arms' intervals, the
  multiplier taken at both arms' deliveries together (t = n1 + n2).
- ``sample_size_per_arm``: deliveries per arm that a two-sided test at alpha
  0.05 with power 0.8 needs to detect an absolute lift over a baseline rate
  (the normal approximation for two proportions, pooled under the null).

Every interval treats deliveries as independent. Deliveries to one HCP are
correlated, so with many deliveries per HCP the intervals are too narrow.
"""

from __future__ import annotations

import math
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
# The confidence sequence is tightest near this many observations (rho below).
CS_TUNED_FOR = 2000


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def rate(successes: int, n: int) -> float | None:
    return successes / n if n else None


def wilson(
    successes: int, n: int, alpha: float = ALPHA, z: float | None = None
) -> tuple[float, float] | None:
    """The Wilson score interval of successes / n, ``z`` standard errors wide (default:
    the normal quantile of ``alpha``); None without observations."""
    if n <= 0:
        return None
    z = _z(alpha) if z is None else z
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(
    s1: int, n1: int, s2: int, n2: int, alpha: float = ALPHA, z: float | None = None
) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval of rate2 - rate1 (method 10, 1998)."""
    w1, w2 = wilson(s1, n1, alpha, z), wilson(s2, n2, alpha, z)
    if w1 is None or w2 is None:
        return None
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = w1, w2
    d = p2 - p1
    return (
        d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )


def _rho(alpha: float, t_opt: int = CS_TUNED_FOR) -> float:
    """The mixture's precision that makes the boundary tightest near ``t_opt``
    (Howard et al. 2021, section 3.5)."""
    la = -2 * math.log(alpha)
    return t_opt / (la + math.log(1 + la))


def cs_multiplier(t: int, alpha: float = ALPHA, t_opt: int = CS_TUNED_FOR) -> float:
    """How many standard errors the always-valid boundary is wide after t observations."""
    rho = _rho(alpha, t_opt)
    return math.sqrt((1 + rho / t) * math.log((t + rho) / (rho * alpha * alpha)))


def rate_cs(successes: int, n: int, alpha: float = ALPHA) -> tuple[float, float] | None:
    """An always-valid interval of the rate after n observations; None without any.

    The rates mu whose standardised sum (S - n mu) / sqrt(mu (1 - mu)) lies inside the
    normal-mixture boundary: Wilson's interval with the boundary's multiplier in place
    of the normal quantile (the spread under mu, not the sample's, so that a few early
    clicks do not make a falsely narrow interval).
    """
    if n <= 0:
        return None
    return wilson(successes, n, z=cs_multiplier(n, alpha))


def lift_cs(s1: int, n1: int, s2: int, n2: int, alpha: float = ALPHA) -> tuple[float, float] | None:
    """An always-valid interval of rate2 - rate1: Newcombe's combination of the arms'
    always-valid intervals, the multiplier taken at both arms' observations together."""
    if n1 <= 0 or n2 <= 0:
        return None
    return newcombe(s1, n1, s2, n2, z=cs_multiplier(n1 + n2, alpha))


def sample_size_per_arm(
    baseline: float, lift: float, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Observations per arm to detect an absolute ``lift`` over ``baseline`` (two-sided)."""
    p1, p2 = baseline, baseline + lift
    if lift == 0 or not (0 < p1 < 1) or not (0 < p2 < 1):
        return None
    z_a, z_b = _z(alpha), NormalDist().inv_cdf(power)
    pbar = (p1 + p2) / 2
    top = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(top * top / (lift * lift))


def detectable_lift(
    baseline: float, n: int, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest absolute lift that n observations per arm detect with that power."""
    if n <= 0 or not (0 < baseline < 1):
        return None
    lo, hi = 0.0, (1.0 - baseline) * (1 - 1e-9)
    needed = sample_size_per_arm(baseline, hi, alpha, power)
    if needed is None or needed > n:
        return None  # not even the largest lift
    for _ in range(60):  # the sample size falls as the lift grows: bisect
        mid = (lo + hi) / 2
        needed = sample_size_per_arm(baseline, mid, alpha, power)
        if needed is not None and needed <= n:
            hi = mid
        else:
            lo = mid
    return hi


def points(x: float) -> str:
    """A rate difference in percentage points, as people say it."""
    return f"{x * 100:.1f}".replace("-0.0", "0.0")


def verdict(
    reference: str, arm: str, lift: float | None, interval: tuple[float, float] | None
) -> str:
    """One sentence on one arm against the reference, from the interval given."""
    if lift is None or interval is None:
        return f"arm {arm}: no deliveries yet"
    lo, hi = interval
    span = f"95% interval {points(lo)} to {points(hi)}"
    if lo > 0:
        return f"arm {arm} ahead of {reference} by {points(lift)} points, {span}"
    if hi < 0:
        return f"arm {arm} behind {reference} by {points(-lift)} points, {span}"
    return f"arm {arm} against {reference}: not yet significant ({points(lift)} points, {span})"
