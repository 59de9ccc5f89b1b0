"""What the text says beyond its tags: clause embeddings without the clauses that restate a tag.

A module's body mixes several statements: an opener in its tonality, the
claim of its message, a theme line, a format line, and somewhere one or two
sentences about who or what it is for. A whole-body embedding is dominated by
the statements that restate the tags (on the benchmark worlds the tags
explain about half of its variance), so its first principal components say
mostly what the tags already say and bury the rest.

So the text is read at clause level (headline, each sentence of the body, key
message, call to action, each embedded on its own). The clauses of the whole
catalogue are clustered (k-means on the unit vectors); a cluster whose
clauses come, at least ``PURITY`` of them, from modules sharing one value of
one tag kind restates that tag (a message's claim, a tonality's opener, a
format's line) and is dropped, and so is a cluster of one sentence repeated
word for word (``BOILERPLATE_COSINE``: "Learn more", a heading's "what is
new"), which says nothing about what a module is about. What is left is what
the tags do not say: a module's text vector is the mean of its kept clauses,
which the model then compresses to a few principal directions
(``data.TextReducer``).

Everything a version met after training needs is the centroids and the kept
flags (stored in the model artifact): its clauses go to their nearest
centroid and are kept or dropped the same way.
"""

from __future__ import annotations

import re

import numpy as np

from .features import TAG_KINDS

_SENTENCE = re.compile(r"(?<=[.!?:;])\s+")
PURITY = 0.8  # share of a cluster's clauses in modules with one tag value: a restatement
# Mean cosine of a cluster's clauses to its centre at or above which they are one
# sentence repeated (a call to action, a heading's boilerplate): a template says the
# same in every module it is in, and averaged in it only dilutes what the rest says.
BOILERPLATE_COSINE = 0.99
MIN_CLUSTERS, MAX_CLUSTERS, CLAUSES_PER_CLUSTER = 8, 64, 20


def split_clauses(*parts: str) -> list[str]:
    """The clauses of a version's text: each field, its body cut into sentences."""
    out: list[str] = []
    for part in parts:
        for line in (part or "").splitlines():
            out.extend(s.strip() for s in _SENTENCE.split(line) if s.strip())
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def nearest(centroids: np.ndarray, clause_vectors: np.ndarray) -> np.ndarray:
    """Index of each clause's nearest centroid (by cosine)."""
    if len(centroids) == 0 or len(clause_vectors) == 0:
        return np.zeros(len(clause_vectors), dtype=np.int64)
    return np.argmax(_unit(clause_vectors) @ centroids.T, axis=1)


def fit_clause_filter(
    clause_vectors: np.ndarray, clause_item: np.ndarray, items, vocab, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, kept flags): cluster every clause, flag the clusters that restate a tag."""
    from sklearn.cluster import KMeans

    n = len(clause_vectors)
    k = int(np.clip(n // CLAUSES_PER_CLUSTER, MIN_CLUSTERS, MAX_CLUSTERS))
    if n < 2 * MIN_CLUSTERS:
        width = clause_vectors.shape[1] if clause_vectors.ndim == 2 else 384
        return np.zeros((0, width), np.float32), np.zeros(0, dtype=bool)
    unit = _unit(clause_vectors.astype(np.float64))
    km = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(unit)
    centroids = _unit(km.cluster_centers_).astype(np.float32)
    label = km.labels_
    cosine = np.bincount(label, (unit * centroids[label]).sum(axis=1), minlength=k)
    keep = cosine / np.maximum(np.bincount(label, minlength=k), 1) < BOILERPLATE_COSINE
    for kind in TAG_KINDS:
        onehot = items.tag_matrix(kind, len(getattr(vocab, kind)), np.arange(items.n)) > 0
        if onehot.shape[1] == 0:
            continue
        counts = np.zeros((k, onehot.shape[1]))
        np.add.at(counts, label, onehot[clause_item].astype(np.float64))
        share = counts / np.maximum(np.bincount(label, minlength=k), 1)[:, None]
        keep &= share.max(axis=1) < PURITY
    return centroids, keep


def kept_clause_means(
    centroids: np.ndarray,
    keep: np.ndarray,
    clause_vectors: np.ndarray,
    clause_item: np.ndarray,
    n_items: int,
) -> np.ndarray:
    """(n_items, dim): mean of each item's clauses that restate no tag (zeros if none)."""
    width = clause_vectors.shape[1] if clause_vectors.ndim == 2 else centroids.shape[1]
    out = np.zeros((n_items, width), dtype=np.float64)
    if len(clause_vectors) == 0 or len(centroids) == 0:
        return out.astype(np.float32)
    kept = keep[nearest(centroids, clause_vectors)]
    np.add.at(out, clause_item[kept], clause_vectors[kept].astype(np.float64))
    count = np.bincount(clause_item[kept], minlength=n_items)
    out /= np.maximum(count, 1)[:, None]
    return out.astype(np.float32)
