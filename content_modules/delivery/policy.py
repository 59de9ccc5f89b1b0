"""The exploration policy: epsilon-greedy per position, with exact logged propensities.

Position by position, the policy takes the best-scoring eligible candidate
with probability ``1 - epsilon`` and a uniformly random eligible one with
probability ``epsilon``. The propensity logged for the item at a position is
the probability that the policy chose it there given the items above it:
``(1 - epsilon) * [item is the greedy choice] + epsilon / n_eligible``. These
are exact (no sampling estimate, unlike Thompson sampling), which is what
IPS/SNIPS off-policy evaluation needs. Without exploration the policy is
greedy and every propensity is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pick:
    """The candidate chosen at one position."""

    index: int
    propensity: float
    explored: bool
    capped: bool


def policy_name(explore: bool, epsilon: float) -> str:
    return f"epsilon-greedy({epsilon:g})" if explore else "greedy"


def choose(
    scores: np.ndarray,
    positions: list[np.ndarray],
    capped: np.ndarray,
    *,
    explore: bool,
    epsilon: float,
    rng: np.random.Generator,
) -> list[Pick | None]:
    """Fill positions in order; each position's mask says which candidates may fill it.

    A candidate is used at most once. Frequency-capped candidates are eligible
    at a position only when no uncapped one is (so they fill what nothing else
    can). A position nothing can fill gets ``None``.
    """
    used = np.zeros(len(scores), dtype=bool)
    picks: list[Pick | None] = []
    for eligible in positions:
        free = eligible & ~used
        pool = np.flatnonzero(free & ~capped)
        if len(pool) == 0:
            pool = np.flatnonzero(free)
        if len(pool) == 0:
            picks.append(None)
            continue
        greedy = int(pool[np.argmax(scores[pool])])
        if explore:
            chosen = int(rng.choice(pool)) if rng.random() < epsilon else greedy
            propensity = (1.0 - epsilon) * (chosen == greedy) + epsilon / len(pool)
        else:
            chosen, propensity = greedy, 1.0
        used[chosen] = True
        picks.append(
            Pick(
                index=chosen,
                propensity=float(propensity),
                explored=chosen != greedy,
                capped=bool(capped[chosen]),
            )
        )
    return picks
