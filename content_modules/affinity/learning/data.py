"""Read events, versions and HCPs from the database into numpy arrays.

Training reads a million events, so nothing here builds model instances per
row: events come through one raw SQL query, the rest through ``values_list``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count

from content_modules.library.models import Channel, ModuleVersion, Tag

from ..models import HCP, EngagementEvent
from . import topics
from .features import EVENT_CODES, TAG_KINDS, HcpTable, ItemTable, Vocab

MAX_SPECIALTIES = 30
MAX_SEGMENTS = 12
MAX_REGIONS = 30
MAX_GROUPS = 120


def _top(counter: Counter, limit: int) -> list[str]:
    return sorted(v for v, _ in counter.most_common(limit) if v)


def load_vocab() -> Vocab:
    """Vocabularies from the tag tables and the most common HCP profile values."""
    tags: dict[str, list[str]] = {kind: [] for kind in TAG_KINDS}
    for kind, slug in Tag.objects.order_by("kind", "slug").values_list("kind", "slug"):
        tags[kind].append(slug)
    spec, seg, reg, grp = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    for row in (
        HCP.objects.values("specialty", "segment", "region").annotate(n=Count("id")).order_by()
    ):
        spec[row["specialty"]] += row["n"]
        seg[row["segment"]] += row["n"]
        reg[row["region"]] += row["n"]
        if row["specialty"] or row["segment"]:
            grp[f"{row['specialty']}|{row['segment']}"] += row["n"]
    return Vocab(
        message=tags["message"],
        theme=tags["theme"],
        tonality=tags["tonality"],
        format=tags["format"],
        channel=list(Channel.objects.order_by("slug").values_list("slug", flat=True)),
        specialty=_top(spec, MAX_SPECIALTIES),
        segment=_top(seg, MAX_SEGMENTS),
        region=_top(reg, MAX_REGIONS),
        group=_top(grp, MAX_GROUPS),
    )


def _codes(values: list[str], index: dict[str, int]) -> np.ndarray:
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.int32, count=len(values))


def hcp_codes(
    vocab: Vocab, specialty: list[str], segment: list[str], region: list[str], channel: list[str]
):
    """Profile values to vocabulary codes (-1 for unknown or rare values)."""
    groups = [f"{s}|{g}" for s, g in zip(specialty, segment, strict=True)]
    return (
        _codes(specialty, vocab.index("specialty")),
        _codes(segment, vocab.index("segment")),
        _codes(region, vocab.index("region")),
        _codes(channel, vocab.index("channel")),
        _codes(groups, vocab.index("group")),
    )


def load_hcps(vocab: Vocab) -> HcpTable:
    rows = list(
        HCP.objects.order_by("id").values_list(
            "id", "specialty", "segment", "region", "preferred_channel"
        )
    )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    spec, seg, reg, ch, grp = hcp_codes(
        vocab, list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4])
    )
    return HcpTable(
        ids=ids, specialty=spec, segment=seg, region=reg, preferred_channel=ch, group=grp
    )


class TextReducer:
    """Centre and project 384-d text vectors onto a few principal directions.

    With clause ``centroids`` (clause mode, see ``topics``), the vector of a
    version is the mean of its clauses that restate no tag; without them it
    is the embedding of the whole text.
    """

    def __init__(
        self,
        mean: np.ndarray,
        components: np.ndarray,
        taste: np.ndarray,
        centroids: np.ndarray | None = None,
        keep: np.ndarray | None = None,
    ) -> None:
        self.mean = mean.astype(np.float32)
        self.components = components.astype(np.float32)
        self.taste = taste.astype(np.float32)
        width = self.mean.shape[0] if self.mean.ndim else 384
        self.centroids = (
            np.zeros((0, width), np.float32) if centroids is None else centroids.astype(np.float32)
        )
        self.keep = np.zeros(0, dtype=bool) if keep is None else keep.astype(bool)

    @property
    def clause_mode(self) -> bool:
        return len(self.centroids) > 0

    @classmethod
    def fit(cls, matrix: np.ndarray, dim: int, taste_dim: int = 64, seed: int = 0) -> TextReducer:
        from sklearn.decomposition import PCA

        width = matrix.shape[1] if matrix.ndim == 2 and matrix.shape[1] else 384
        mean = matrix.mean(axis=0) if len(matrix) else np.zeros(width, np.float32)
        components = np.zeros((dim, width), dtype=np.float32)
        taste = np.zeros((taste_dim, width), dtype=np.float32)
        k = min(max(dim, taste_dim), max(len(matrix) - 1, 0))
        if k > 0:
            pca = PCA(n_components=k, random_state=seed).fit(matrix - mean)
            # Whitened directions for the interaction columns, so one regularisation
            # strength suits every direction; plain ones for similarities, where
            # whitening would blow up directions that are mostly noise.
            scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-8))
            kd, kt = min(dim, k), min(taste_dim, k)
            components[:kd] = pca.components_[:kd] / scale[:kd, None]
            taste[:kt] = pca.components_[:kt]
        return cls(mean, components, taste)

    @classmethod
    def fit_clauses(
        cls,
        clause_vectors: np.ndarray,
        clause_item: np.ndarray,
        items: ItemTable,
        vocab: Vocab,
        dim: int,
        taste_dim: int = 64,
        seed: int = 0,
    ) -> TextReducer:
        """Clause mode: drop the clauses that restate a tag, PCA of the rest per item."""
        centroids, keep = topics.fit_clause_filter(
            clause_vectors, clause_item, items, vocab, seed=seed
        )
        vectors = topics.kept_clause_means(centroids, keep, clause_vectors, clause_item, items.n)
        fitted = cls.fit(vectors, dim, taste_dim, seed)
        return cls(fitted.mean, fitted.components, fitted.taste, centroids, keep)

    def item_vectors(
        self, clause_vectors: np.ndarray, clause_item: np.ndarray, n_items: int
    ) -> np.ndarray:
        """Clause mode: each item's text vector from its clause embeddings."""
        return topics.kept_clause_means(
            self.centroids, self.keep, clause_vectors, clause_item, n_items
        )

    def transform(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whitened z, plain zt) projections of text vectors."""
        if len(matrix) == 0:
            return (
                np.zeros((0, self.components.shape[0]), dtype=np.float32),
                np.zeros((0, self.taste.shape[0]), dtype=np.float32),
            )
        centred = matrix - self.mean
        return (
            (centred @ self.components.T).astype(np.float32),
            (centred @ self.taste.T).astype(np.float32),
        )


def version_embeddings(version_ids: list[int]) -> tuple[list[int], np.ndarray]:
    """Stored embeddings of the given versions (those without one are left out)."""
    from ..embeddings import embedding_matrix

    return embedding_matrix(version_ids)


def load_items(
    vocab: Vocab,
    version_ids: list[int] | None = None,
    reducer: TextReducer | None = None,
    dim: int = 16,
    taste_dim: int = 64,
    clauses: bool = True,
) -> tuple[ItemTable, TextReducer]:
    """Features of the given versions (all versions when None), fitting the reducer if needed.

    A new reducer works in clause mode (``topics``) when ``clauses`` and the
    versions' clause embeddings are stored; a given reducer decides by itself.
    """
    qs = ModuleVersion.objects.order_by("id")
    if version_ids is not None:
        qs = qs.filter(id__in=list(version_ids))
    rows = list(
        qs.values_list("id", "module_id", "message__slug", "tonality__slug", "format__slug")
    )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    position = {int(v): i for i, v in enumerate(ids)}
    themes = np.zeros((len(rows), len(vocab.theme)), dtype=np.float32)
    theme_index = vocab.index("theme")
    through = (
        ModuleVersion.themes.through.objects.filter(moduleversion_id__in=list(position))
        if (version_ids is not None)
        else ModuleVersion.themes.through.objects.all()
    )
    for vid, slug in through.values_list("moduleversion_id", "tag__slug"):
        if vid in position and slug in theme_index:
            themes[position[vid], theme_index[slug]] = 1.0
    counts = themes.sum(axis=1, keepdims=True)
    themes = np.divide(themes, counts, out=np.zeros_like(themes), where=counts > 0)
    emb_ids, matrix = version_embeddings([int(v) for v in ids])
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    table = ItemTable(
        ids=ids,
        module_ids=np.fromiter(cols[1], dtype=np.int64, count=len(rows)),
        message=_codes(list(cols[2]), vocab.index("message")).astype(np.int16),
        tonality=_codes(list(cols[3]), vocab.index("tonality")).astype(np.int16),
        format=_codes(list(cols[4]), vocab.index("format")).astype(np.int16),
        themes=themes,
        z=np.zeros((len(rows), 0), dtype=np.float32),
        zt=np.zeros((len(rows), 0), dtype=np.float32),
    )
    want_clauses = reducer.clause_mode if reducer is not None else clauses
    clause_vectors: np.ndarray | None = None
    clause_item: np.ndarray | None = None
    if want_clauses:
        from ..embeddings import clause_matrix

        clause_ids, clause_vectors, owner = clause_matrix([int(v) for v in ids])
        clause_item = np.array([position[v] for v in clause_ids], dtype=np.int64)[owner]
        if reducer is None and len(clause_vectors) < 2 * topics.MIN_CLUSTERS:
            clause_vectors = None  # too little stored at clause level yet: whole texts
    if reducer is None:
        if clause_vectors is not None and clause_item is not None:
            reducer = TextReducer.fit_clauses(
                clause_vectors, clause_item, table, vocab, dim, taste_dim
            )
        if reducer is None or not reducer.keep.any():
            # No clause says anything the tags do not: the whole texts, as before.
            reducer = TextReducer.fit(matrix, dim, taste_dim)
    z = np.zeros((len(rows), reducer.components.shape[0]), dtype=np.float32)
    zt = np.zeros((len(rows), reducer.taste.shape[0]), dtype=np.float32)
    if reducer.clause_mode:
        if clause_vectors is not None and clause_item is not None and len(clause_vectors):
            z, zt = reducer.transform(reducer.item_vectors(clause_vectors, clause_item, len(rows)))
        else:
            z, zt = reducer.transform(np.zeros((len(rows), reducer.mean.shape[0]), np.float32))
    elif emb_ids:
        where = [position[v] for v in emb_ids]
        z[where], zt[where] = reducer.transform(matrix)
    table.z, table.zt = z, zt
    return table, reducer


EVENT_CHUNK = 50_000

EVENT_SQL = {
    "postgresql": "EXTRACT(EPOCH FROM e.occurred_at)::float8",
    "sqlite": "(julianday(e.occurred_at) - 2440587.5) * 86400.0",
}


def load_events(
    *, hcp_id: int | None = None, before: datetime | None = None
) -> dict[str, np.ndarray]:
    """Events as arrays: hcp, version (module's latest when unknown), t, type, dwell, channel."""
    epoch = EVENT_SQL.get(connection.vendor, EVENT_SQL["postgresql"])
    type_case = " ".join(f"WHEN '{k}' THEN {v}" for k, v in EVENT_CODES.items())
    channels = list(Channel.objects.order_by("slug").values_list("slug", flat=True))
    channel_case = " ".join(f"WHEN %s THEN {i}" for i in range(len(channels)))
    event_table = EngagementEvent._meta.db_table
    sql = (
        f"SELECT e.hcp_id, COALESCE(e.version_id, m.latest_id, -1), {epoch}, "
        f"CASE e.type {type_case} ELSE -1 END, COALESCE(e.dwell_seconds, 0), "
        f"CASE e.channel {channel_case} ELSE -1 END "
        f"FROM {event_table} e JOIN library_module m ON m.id = e.module_id"
    )
    params: list = list(channels)
    where = []
    if hcp_id is not None:
        where.append("e.hcp_id = %s")
        params.append(hcp_id)
    if before is not None:
        where.append("e.occurred_at < %s")
        params.append(before)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if not channels:
        sql = sql.replace("CASE e.channel  ELSE -1 END", "-1")
    # Streamed in chunks (a server-side cursor on PostgreSQL): a million rows
    # fetched at once are a million Python tuples, ~0.3 GB at the peak for
    # arrays of 48 MB.
    parts = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(EVENT_CHUNK):
            parts.append(np.array(rows, dtype=np.float64))
            del rows
    if not parts:
        return {
            "hcp": np.zeros(0, np.int64),
            "version": np.zeros(0, np.int64),
            "t": np.zeros(0),
            "type": np.zeros(0, np.int8),
            "dwell": np.zeros(0),
            "channel": np.zeros(0, np.int16),
        }
    return {
        name: np.concatenate([part[:, j] for part in parts]).astype(dtype)
        for j, (name, dtype) in enumerate(
            (
                ("hcp", np.int64),
                ("version", np.int64),
                ("t", np.float64),
                ("type", np.int8),
                ("dwell", np.float64),
                ("channel", np.int16),
            )
        )
    }
