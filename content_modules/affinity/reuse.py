"""The reuse finder: approved modules similar to what an author is writing.

Reusing pre-approved content is what shortens MLR review, so the authoring form
(live, as the author types), the review page and the API show the approved
modules closest to the text at hand, and say whether it states a new claim.

One score, one definition, everywhere: the cosine between the embedding of the
module text (``embedding_text_of``: headline, body, key message, call to action)
as written or typed and the stored embedding of each approved version's text.
The list, the verdict above it, the review page and ``POST
/api/v1/modules/similar`` all come from ``find_reuse``.

The verdict:

- ``known``: an approved module scores at least ``REUSE_NOVELTY_THRESHOLD``
  (default 0.60) and every figure the draft states is stated there too;
- ``numbers_differ``: approved modules score above the threshold, but the
  closest states other figures (``numbers.differing_figures``): "reduced events
  by 30%" against an approved "by 24%" embeds at 0.99 yet is a new claim, shown
  as "new claim: 30% vs approved 24%", never as a near-duplicate;
- ``novel``: no approved module reaches the threshold.

The threshold comes from ``bench/reuse_threshold.py``: with all-MiniLM-L6-v2,
12 of 12 reworded approved claims score 0.64-0.95 against their original, while
7 of 8 new claims in the same therapy areas score 0.38-0.59 against their
closest approved claim. The verdict is a hint for the author, never a
substitute for review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from content_modules.library.models import Brand, Market, ModuleVersion

from . import embeddings
from .models import VersionEmbedding
from .numbers import FigureDifference, differing_figures

logger = logging.getLogger(__name__)

# Approved versions missing an embedding (the sweeper has not run yet) are
# embedded on the spot, up to this many per call, so results are complete.
_EMBED_ON_DEMAND = 64

# Process-level cache of the approved corpus' stored vectors, by (model sha, version
# id): an approved version is frozen, so its text and vector never change. It saves
# the vector rows' read on every keystroke-driven request. Bounded: ~1.5 kB each.
_CORPUS: dict[tuple[str, int], bytes] = {}
_CORPUS_MAX = 50_000


def novelty_threshold() -> float:
    """The score under which an approved module counts as not the same content."""
    return float(getattr(settings, "REUSE_NOVELTY_THRESHOLD", 0.60))


def percent(score: float) -> int:
    """The score as people read it, the same on every page and in the API."""
    return max(0, round(score * 100))


def _slug(value, model) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, model):
        return value.slug if model is Brand else value.code
    return str(value)


def _candidates(*, brand=None, market=None, exclude_module_id: int | None = None):
    qs = ModuleVersion.objects.approved_now()
    brand_slug, market_code = _slug(brand, Brand), _slug(market, Market)
    if brand_slug:
        qs = qs.for_brand(brand_slug)
    if market_code:
        qs = qs.for_market(market_code)
    if exclude_module_id is not None:
        qs = qs.exclude(module_id=exclude_module_id)
    return qs


def _version_vector(version: ModuleVersion) -> np.ndarray:
    """The version's embedding: stored when up to date, else computed now."""
    text = version.embedding_text()
    name, sha = embeddings.model_info()
    stored = VersionEmbedding.objects.filter(
        version_id=version.pk,
        model_name=name,
        model_sha256=sha,
        text_sha256=embeddings.text_sha256(text),
    ).first()
    if stored is not None:
        return stored.as_array()
    return embeddings.encode([text])[0]


def corpus_matrix(candidate_ids: list[int]) -> tuple[list[int], np.ndarray]:
    """(ids, matrix) of the approved candidates' stored vectors, cached per process.

    Candidates without a stored vector yet are embedded now (up to
    ``_EMBED_ON_DEMAND``), so results are complete before the sweeper runs.
    """
    _, sha = embeddings.model_info()
    todo = [pk for pk in candidate_ids if (sha, pk) not in _CORPUS]
    if todo:
        ids, matrix = embeddings.embedding_matrix(todo)
        missing = sorted(set(todo) - set(ids))
        if missing:
            embeddings.embed_versions(missing[:_EMBED_ON_DEMAND])
            ids, matrix = embeddings.embedding_matrix(todo)
        if len(_CORPUS) + len(ids) > _CORPUS_MAX:
            _CORPUS.clear()
        for pk, row in zip(ids, matrix, strict=True):
            _CORPUS[(sha, pk)] = row.tobytes()
    ids = [pk for pk in candidate_ids if (sha, pk) in _CORPUS]
    if not ids:
        return [], np.zeros((0, embeddings.DIM), dtype=np.float32)
    matrix = np.frombuffer(b"".join(_CORPUS[(sha, pk)] for pk in ids), dtype=np.float32)
    return ids, matrix.reshape(len(ids), -1)


def _top_k(ids: list[int], scores: np.ndarray, k: int) -> list[tuple[ModuleVersion, float]]:
    if not ids or k <= 0:
        return []
    k = min(k, len(ids))
    order = np.argpartition(-scores, k - 1)[:k]
    order = order[np.argsort(-scores[order], kind="stable")]
    chosen = [ids[i] for i in order]
    versions = ModuleVersion.objects.with_content().in_bulk(chosen)
    return [(versions[ids[i]], float(scores[i])) for i in order if ids[i] in versions]


def similar_approved(
    *,
    text: str | None = None,
    version: ModuleVersion | None = None,
    k: int = 5,
    brand=None,
    market=None,
    exclude_module_id: int | None = None,
) -> list[tuple[ModuleVersion, float]]:
    """The k approved-now versions most similar to a text or a version, best first.

    The score is the one score of this module (see its docstring). Given a
    version, its own module is left out. ``brand`` and ``market`` (slug or code,
    or the objects) narrow the candidates.
    """
    if (text is None) == (version is None):
        raise ValueError("give exactly one of text or version")
    query = embeddings.encode([text or ""])[0] if version is None else _version_vector(version)
    if version is not None:
        exclude_module_id = version.module_id
    candidate_ids = list(
        _candidates(brand=brand, market=market, exclude_module_id=exclude_module_id).values_list(
            "pk", flat=True
        )
    )
    ids, matrix = corpus_matrix(candidate_ids)
    return _top_k(ids, matrix @ query if ids else np.zeros(0), k)


@dataclass(frozen=True)
class Match:
    """One approved module, its score, and the figures the draft states that it does not."""

    version: ModuleVersion
    score: float
    differences: tuple[FigureDifference, ...]
    above_threshold: bool

    @property
    def percent(self) -> int:
        return percent(self.score)

    @property
    def new_claim(self) -> bool:
        """Similar text, other figures: a new claim, not a near-duplicate."""
        return self.above_threshold and bool(self.differences)

    def describe_differences(self) -> str:
        return "; ".join(d.describe() for d in self.differences)


@dataclass(frozen=True)
class Reuse:
    """What the reuse finder says about one text: the matches and the verdict."""

    matches: list[Match]
    threshold: float
    verdict: str  # "known", "numbers_differ" or "novel"
    match: Match | None  # the approved module the verdict is about

    def summary(self) -> str:
        """The verdict in words, as the panel and the API show it."""
        if self.match is None:
            return "New claim: no approved module yet to compare with."
        if self.verdict == "known":
            return f"Close to an approved claim ({self.match.percent}% similar)."
        if self.verdict == "numbers_differ":
            return f"New claim: {self.match.describe_differences()}."
        return f"New claim: close to no approved claim (closest {self.match.percent}% similar)."


def find_reuse(
    *,
    text: str | None = None,
    version: ModuleVersion | None = None,
    k: int = 5,
    brand=None,
    market=None,
    exclude_module_id: int | None = None,
) -> Reuse:
    """The approved modules closest to a text or a version, and whether it is a new claim.

    For a version, candidates are its brand's approved modules other than its
    own (a claim approved for another brand cannot be reused), unless ``brand``
    says otherwise.
    """
    if version is not None:
        brand = brand or version.module.brand
        draft_text = version.embedding_text()
    else:
        draft_text = text or ""
    threshold = novelty_threshold()
    found = similar_approved(
        text=None if version is not None else draft_text,
        version=version,
        k=k,
        brand=brand,
        market=market,
        exclude_module_id=exclude_module_id,
    )
    matches = [
        Match(
            version=v,
            score=score,
            differences=tuple(differing_figures(draft_text, v.embedding_text())),
            above_threshold=score >= threshold,
        )
        for v, score in found
    ]
    close = [m for m in matches if m.above_threshold]
    same = next((m for m in close if not m.differences), None)
    if same is not None:
        return Reuse(matches, threshold, "known", same)
    if close:
        return Reuse(matches, threshold, "numbers_differ", close[0])
    return Reuse(matches, threshold, "novel", matches[0] if matches else None)


def reuse_context(
    text: str | None = None,
    *,
    version: ModuleVersion | None = None,
    k: int = 5,
    brand=None,
    exclude_module_id: int | None = None,
) -> dict:
    """Template context for ``affinity/_similar.html``: ``reuse`` (a ``Reuse``)."""
    if version is not None:
        found = find_reuse(version=version, k=k)
    else:
        found = find_reuse(text=text or "", k=k, brand=brand, exclude_module_id=exclude_module_id)
    return {"reuse": found}
