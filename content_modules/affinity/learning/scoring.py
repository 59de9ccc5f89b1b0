"""Score versions for one HCP with the active model: probabilities, contributions, drivers.

Everything here goes through the serving face (``serving.score``); these are
the shapes the affinity pages and API want.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from content_modules.library.models import ModuleVersion

from ..models import HCP, EngagementEvent
from . import serving
from .features import GROUPS, TAG_KINDS, sigmoid
from .serving import active_model, reset_cache


@dataclass
class Score:
    """The model's view of one (HCP, version) pair."""

    version_id: int
    probability: float
    logit: float
    contributions: dict[str, float]
    drivers: list[str] = field(default_factory=list)
    model_version: str | None = None
    fallback: bool = False


def _version_ids(versions_or_ids: Iterable) -> list[int]:
    return [int(getattr(v, "pk", v)) for v in versions_or_ids]


def _as_scores(scores: serving.Scores, with_drivers: bool = True) -> list[Score]:
    positions = np.arange(len(scores.version_ids))
    if with_drivers:
        explained = scores.explain(positions)
    else:
        explained = [
            serving.Explanation(dict(zip(GROUPS, c, strict=True)), [])
            for c in scores.contributions(positions).tolist()
        ]
    return [
        Score(
            version_id=int(vid),
            probability=float(p),
            logit=float(lg),
            contributions=e.contributions,
            drivers=e.drivers,
            model_version=scores.model_version,
            fallback=scores.fallback,
        )
        for vid, p, lg, e in zip(
            scores.version_ids, scores.probabilities, scores.logits, explained, strict=True
        )
    ]


def popularity_scores(hcp: HCP, version_ids: list[int]) -> list[Score]:
    """Fallback without a trained model: smoothed engagement rate per version, flagged."""
    return _as_scores(serving.popularity(hcp, np.asarray(version_ids, dtype=np.int64)))


def score_versions(
    hcp: HCP, versions_or_ids: Iterable, *, channel: str | None = None, with_drivers: bool = True
) -> list[Score]:
    """Score candidate versions for one HCP, in the order given (unknown ids left out).

    Without a trained model it falls back to smoothed popularity and flags
    each score with ``fallback=True``.
    """
    version_ids = _version_ids(versions_or_ids)
    if not version_ids:
        return []
    return _as_scores(serving.score(hcp, version_ids, channel=channel), with_drivers)


def _catalogue_ids(model: serving.ServingModel) -> np.ndarray:
    """The approved-now versions (or, when none, every version the model knows)."""
    ids = list(ModuleVersion.objects.approved_now().values_list("id", flat=True)[:5000])
    if ids:
        known = np.asarray(ids, dtype=np.int64)
        known = known[model.item_rows(known) >= 0]
        if len(known):
            return known
    return model.trained.items.ids


def hcp_affinity(hcp: HCP) -> dict:
    """Predicted engagement probability per tag and channel value, everything else average."""
    model = active_model()
    if model is None:
        from content_modules.errors import Conflict

        raise Conflict(
            "No affinity model has been trained yet: POST /api/v1/affinity/train first.",
            field="model",
        )
    t = model.trained
    now = time.time()
    ids = _catalogue_ids(model)
    events = model.events_of(hcp)
    scores = model.score(hcp, ids, now=now, events=events)
    contributions = scores.contributions(np.arange(len(scores.version_ids)))
    answer: dict = {
        "hcp": hcp.external_id,
        "model_version": model.model_version,
        "n_events": EngagementEvent.objects.filter(hcp=hcp).count(),
    }
    by_value = model.tag_value_contributions(hcp, now, events)
    for kind in TAG_KINDS:
        j = GROUPS.index(kind)
        # The other groups stay at the catalogue average.
        rest = float(np.mean(scores.logits - contributions[:, j]))
        answer[kind] = {
            value: round(float(sigmoid(rest + by_value[kind][i])), 4)
            for i, value in enumerate(getattr(t.vocab, kind))
        }
    answer["channel"] = {
        slug: round(
            float(
                sigmoid(np.mean(model.score(hcp, ids, channel=slug, now=now, events=events).logits))
            ),
            4,
        )
        for slug in t.vocab.channel
    }
    return answer


def group_prior_scores(specialty: str, segment: str, version_ids: list[int]) -> np.ndarray:
    """Probabilities for an HCP of this specialty and segment with no history or profile."""
    anonymous = HCP(external_id="prior", specialty=specialty, segment=segment)
    anonymous.pk = -1  # no events belong to it
    return serving.score(anonymous, version_ids).probabilities


__all__ = [
    "Score",
    "active_model",
    "group_prior_scores",
    "hcp_affinity",
    "popularity_scores",
    "reset_cache",
    "score_versions",
]
