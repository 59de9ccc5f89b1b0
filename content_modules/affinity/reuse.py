"""The reuse finder: approved modules similar to what an author is writing.

Reusing pre-approved content is what shortens MLR review, so the authoring form
and the review page show the approved modules closest to the text at hand
(cosine over the stored version embeddings), and flag a key message that is
close to *no* approved claim: a new claim needs full substantiation.

Claims are compared key message to key message: their vectors are computed
from the approved versions' key messages and cached (an approved version is
frozen, so its key message never changes under the same version id).

The novelty threshold (``REUSE_NOVELTY_THRESHOLD``, default 0.60) comes from
``bench/reuse_threshold.py``: with all-MiniLM-L6-v2, 12 of 12 reworded
approved claims score 0.64-0.95 against their original, while 7 of 8 new claims
in the same therapy areas score 0.38-0.59 against their closest approved
claim. A claim that changes only the endpoint or the number (e.g. "mortality
by 15%" versus "cardiac events by 24%") can still score ~0.75: the flag is a
hint for the author, never a substitute for review.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.core.cache import cache

from content_modules.library.models import Brand, Market, ModuleVersion

from . import embeddings
from .models import VersionEmbedding

logger = logging.getLogger(__name__)

# Approved versions missing an embedding (the sweeper has not run yet) are
# embedded on the spot, up to this many per call, so results are complete.
_EMBED_ON_DEMAND = 64


def novelty_threshold() -> float:
    """The cosine under which a key message counts as a new claim."""
    return float(getattr(settings, "REUSE_NOVELTY_THRESHOLD", 0.60))


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
) -> list[tuple[ModuleVersion, float]]:
    """The k approved-now versions most similar to a text or a version, best first.

    Given a version, its own module is left out. ``brand`` and ``market`` (slug
    or code, or the objects) narrow the candidates.
    """
    if (text is None) == (version is None):
        raise ValueError("give exactly one of text or version")
    query = embeddings.encode([text or ""])[0] if version is None else _version_vector(version)
    candidate_ids = list(
        _candidates(
            brand=brand,
            market=market,
            exclude_module_id=version.module_id if version is not None else None,
        ).values_list("pk", flat=True)
    )
    ids, matrix = embeddings.embedding_matrix(candidate_ids)
    missing = sorted(set(candidate_ids) - set(ids))
    if missing:
        embeddings.embed_versions(missing[:_EMBED_ON_DEMAND])
        ids, matrix = embeddings.embedding_matrix(candidate_ids)
    return _top_k(ids, matrix @ query if ids else np.zeros(0), k)


# Process-level first cache of claim vectors (key -> float32 bytes); the Django
# cache (Redis in production) is the shared second level. Bounded: ~1.5 kB each.
_LOCAL_CLAIMS: dict[str, bytes] = {}
_LOCAL_CLAIMS_MAX = 20_000


def _claim_vectors(rows: list[tuple[int, str]]) -> tuple[list[int], np.ndarray]:
    """Key-message vectors of approved versions, cached by version id, text and model."""
    if not rows:
        return [], np.zeros((0, embeddings.DIM), dtype=np.float32)
    _, sha = embeddings.model_info()
    keys = {
        pk: f"affinity:claim:{sha[:16]}:{pk}:{embeddings.text_sha256(km)[:16]}" for pk, km in rows
    }
    found = {key: _LOCAL_CLAIMS[key] for key in keys.values() if key in _LOCAL_CLAIMS}
    missing = [key for key in keys.values() if key not in found]
    if missing:
        try:
            found.update(cache.get_many(missing))
        except Exception:  # a cache outage only costs the re-encoding
            logger.warning("claim vector cache unavailable", exc_info=True)
    todo = [(pk, km) for pk, km in rows if keys[pk] not in found]
    if todo:
        fresh = embeddings.encode([km for _, km in todo])
        new = {keys[pk]: vec.tobytes() for (pk, _), vec in zip(todo, fresh, strict=True)}
        found.update(new)
        try:
            cache.set_many(new, timeout=7 * 24 * 3600)
        except Exception:
            logger.warning("claim vector cache unavailable", exc_info=True)
    if len(_LOCAL_CLAIMS) + len(found) > _LOCAL_CLAIMS_MAX:
        _LOCAL_CLAIMS.clear()
    _LOCAL_CLAIMS.update(found)
    ids = [pk for pk, _ in rows]
    matrix = np.frombuffer(b"".join(found[keys[pk]] for pk in ids), dtype=np.float32)
    return ids, matrix.reshape(len(ids), -1)


def claim_novelty(
    key_message: str, *, brand=None, market=None, exclude_module_id: int | None = None
) -> tuple[bool, ModuleVersion | None, float]:
    """(is_novel, closest approved version, its cosine) for one key message."""
    threshold = novelty_threshold()
    rows = list(
        _candidates(brand=brand, market=market, exclude_module_id=exclude_module_id).values_list(
            "pk", "key_message"
        )
    )
    ids, matrix = _claim_vectors(rows)
    if not ids:
        return True, None, 0.0
    scores = matrix @ embeddings.encode([key_message])[0]
    best = int(np.argmax(scores))
    similarity = float(scores[best])
    match = ModuleVersion.objects.with_content().get(pk=ids[best])
    return similarity < threshold, match, similarity


def reuse_context(
    text: str | None = None, *, version: ModuleVersion | None = None, k: int = 5
) -> dict:
    """Template context for ``affinity/_similar.html``: ``similar`` and ``novelty``.

    For a version, candidates are the approved modules of the same brand (a
    claim approved for another brand cannot be reused) other than its own.
    """
    if version is not None:
        brand = version.module.brand
        similar = similar_approved(version=version, k=k, brand=brand)
        is_novel, match, similarity = claim_novelty(
            version.key_message, brand=brand, exclude_module_id=version.module_id
        )
    else:
        similar = similar_approved(text=text or "", k=k)
        is_novel, match, similarity = claim_novelty(text or "")
    return {
        "similar": [
            {
                "version": v,
                "module_id": v.module_id,
                "number": v.number,
                "title": v.title,
                "key_message": v.key_message,
                "brand": v.module.brand.name,
                "market": v.module.market.code,
                "similarity": round(score, 3),
                "percent": max(0, round(score * 100)),
            }
            for v, score in similar
        ],
        "novelty": {
            "is_novel": is_novel,
            "similarity": round(similarity, 3),
            "percent": max(0, round(similarity * 100)),
            "threshold": novelty_threshold(),
            "match": match,
        },
    }
