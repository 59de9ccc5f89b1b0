"""What an arm changes in a recommendation: the candidates, the scores, the exploration.

The compliance gate has already run when these are called: an arm only ever
narrows the gated candidates (``fixed``) or reorders them, so no arm can serve
an unapproved, expired or wrong-channel version.

- ``model`` (and the holdout): nothing changes.
- ``random``: uniform over the gated candidates, position by position, as the
  exploration policy with epsilon 1 (propensity 1/n of the n eligible).
- ``popularity``: ``affinity.learning.serving.popularity`` scores instead of the model.
- ``fixed``: only the arm's modules, ranked by the model.
"""

from __future__ import annotations

import numpy as np

from content_modules.affinity.learning import serving

from .assignment import Assignment
from .models import Policy


def candidates(assigned: Assignment | None, module_ids: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The gated candidate indices ``idx`` the arm may show (``module_ids`` by index)."""
    if assigned is None or assigned.policy != Policy.FIXED:
        return idx
    allowed = np.fromiter(assigned.modules, dtype=np.int64, count=len(assigned.modules))
    return idx[np.isin(module_ids[idx], allowed)]


def score(assigned: Assignment | None, hcp, version_ids: np.ndarray, **model_kwargs):
    """The arm's scores of the candidates: popularity, or the model's."""
    if assigned is not None and assigned.policy == Policy.POPULARITY:
        return serving.popularity(hcp, version_ids)
    return serving.score(hcp, version_ids, **model_kwargs)


def exploration(assigned: Assignment | None, explore: bool, epsilon: float) -> tuple[bool, float]:
    """(explore, epsilon) for the choice: a random arm explores always, uniformly."""
    if assigned is not None and assigned.policy == Policy.RANDOM:
        return True, 1.0
    return explore, epsilon
