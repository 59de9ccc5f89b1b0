"""A synthetic engagement world with structure a model can learn, for the demo and tests.

Plain numpy: given HCP profiles and the tags of approved items, draw logged
deliveries (items chosen uniformly at random, so the log is unbiased) and the
opens and clicks they led to, from a known click probability:

    logit = base
          + specialty x message affinity        (group level)
          + segment x tonality affinity         (group level)
          + the HCP's own taste over messages and formats (individual, as strong)
          + the item's quality + the HCP's responsiveness

Group popularity (click rates per specialty x segment x item) sees the group
terms only through noisy per-cell counts and none of the individual taste;
a model that pools over tags and reads each HCP's history can beat it. A
share of HCPs is cold (0-2 deliveries). The same idea as ``bench/world.py``,
kept small and inside the app so ``seed_demo`` does not depend on ``bench/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASE_LOGIT = -2.2
GROUP_SCALE = 0.9
TASTE_SCALE = 0.9
QUALITY_SCALE = 0.3
RESPONSIVENESS_SCALE = 0.3


@dataclass
class Exposure:
    """One logged delivery and what came of it (times in days before the end of the log)."""

    hcp: int  # index into the HCP list given
    item: int  # index into the item list given
    days_ago: float
    opened: bool
    clicked: bool
    p_click: float


def _codes(values: list[str]) -> tuple[np.ndarray, int]:
    uniq = sorted(set(values))
    index = {v: i for i, v in enumerate(uniq)}
    return np.array([index[v] for v in values], dtype=np.int64), len(uniq)


def click_probabilities(
    *,
    specialty: list[str],
    segment: list[str],
    message: list[str],
    tonality: list[str],
    format: list[str],
    seed: int = 0,
    group_scale: float = GROUP_SCALE,
    taste_scale: float = TASTE_SCALE,
) -> np.ndarray:
    """The true click probability of every (HCP, item) pair, shape (n_hcps, n_items)."""
    rng = np.random.default_rng(seed)
    spec, n_spec = _codes(specialty)
    seg, n_seg = _codes(segment)
    msg, n_msg = _codes(message)
    tone, n_tone = _codes(tonality)
    fmt, n_fmt = _codes(format)
    n_hcps, n_items = len(spec), len(msg)
    spec_msg = rng.normal(0, group_scale, (n_spec, n_msg))
    seg_tone = rng.normal(0, group_scale, (n_seg, n_tone))
    taste_msg = rng.normal(0, taste_scale, (n_hcps, n_msg))
    taste_fmt = rng.normal(0, taste_scale * 0.7, (n_hcps, n_fmt))
    quality = rng.normal(0, QUALITY_SCALE, n_items)
    responsiveness = rng.normal(0, RESPONSIVENESS_SCALE, n_hcps)
    logit = (
        BASE_LOGIT
        + spec_msg[spec][:, msg]
        + seg_tone[seg][:, tone]
        + taste_msg[:, msg]
        + taste_fmt[:, fmt]
        + quality[None, :]
        + responsiveness[:, None]
    )
    return 1.0 / (1.0 + np.exp(-logit))


def exposures(
    p_click: np.ndarray,
    *,
    deliveries: tuple[int, int] = (25, 45),
    cold_share: float = 0.1,
    days: float = 60.0,
    seed: int = 0,
) -> list[Exposure]:
    """Uniformly logged deliveries per HCP and their outcomes, drawn from ``p_click``."""
    rng = np.random.default_rng(seed + 1)
    n_hcps, n_items = p_click.shape
    out: list[Exposure] = []
    for h in range(n_hcps):
        cold = rng.random() < cold_share
        n = int(rng.integers(0, 3)) if cold else int(rng.integers(deliveries[0], deliveries[1] + 1))
        items = rng.integers(0, n_items, n)
        when = rng.uniform(0, days, n)
        for i, t in zip(items, when, strict=True):
            p = float(p_click[h, i])
            clicked = bool(rng.random() < p)
            # Opens: every click, and some of the rest (opens are not what the model learns).
            opened = clicked or bool(rng.random() < 0.35)
            out.append(Exposure(h, int(i), float(t), opened, clicked, p))
    return out
