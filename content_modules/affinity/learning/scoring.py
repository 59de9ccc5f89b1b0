"""Score versions for one HCP with the active model: probabilities, contributions, drivers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from django.db.models import Count, Q

from content_modules.library.models import ModuleVersion

from ..models import HCP, AffinityModel, EngagementEvent
from . import data
from .features import (
    GROUPS,
    READ_DWELL_SECONDS,
    TAG_KINDS,
    ItemTable,
    RowContext,
    collapse_events,
    design_matrix,
    hcp_statistics,
    knn_lift,
    logit,
    personal_taste,
    sigmoid,
    specialty_knn_lift,
    text_neighbours,
)
from .training import TrainedModel

DRIVER_THRESHOLD = 0.1  # logit units: smaller pushes are not worth a sentence


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


class ServingModel:
    """A loaded model plus the versions met since training (added on demand)."""

    def __init__(self, row_id, model_version: str, trained: TrainedModel) -> None:
        self.row_id = row_id
        self.model_version = model_version
        self.trained = trained
        self._lock = threading.Lock()
        self._group_index = trained.vocab.index("group")

    def item_rows(self, version_ids: Sequence[int]) -> np.ndarray:
        """Rows of the versions in the item table, loading unseen versions from the database."""
        ids = np.asarray(list(version_ids), dtype=np.int64)
        rows = self.trained.items.rows(ids)
        missing = sorted({int(v) for v in ids[rows < 0]})
        if missing:
            with self._lock:
                self._extend(missing)
            rows = self.trained.items.rows(ids)
        return rows

    def _extend(self, version_ids: list[int]) -> None:
        t = self.trained
        still = [v for v in version_ids if t.items.rows(np.array([v]))[0] < 0]
        if not still:
            return
        extra, _ = data.load_items(t.vocab, still, reducer=t.reducer)
        if extra.n == 0:
            return
        items = ItemTable.concat(t.items, extra)
        self.trained = replace(t, items=items, history=extend_history(t, extra))

    def hcp_context(
        self, hcp: HCP, item_rows: np.ndarray, channel: str | None, now: float
    ) -> RowContext:
        """Profile codes and recency-weighted history of one HCP, broadcast over candidates."""
        t = self.trained
        vocab = t.vocab
        spec, seg, reg, pref, grp = data.hcp_codes(
            vocab, [hcp.specialty], [hcp.segment], [hcp.region], [hcp.preferred_channel]
        )
        ev = data.load_events(hcp_id=hcp.pk)
        if len(ev["t"]):
            rows = self.item_rows(ev["version"])
            pairs = collapse_events(
                np.zeros(len(rows), dtype=np.int64),
                rows,
                ev["t"],
                ev["type"],
                ev["dwell"],
                ev["channel"],
                self.trained.items.n,
            )
        else:
            pairs = collapse_events(*(np.zeros(0, dtype=np.int64) for _ in range(6)), 1)
        stats = hcp_statistics(pairs, self.trained.items, vocab, 1, now, t.params.half_life_days)
        n = len(item_rows)
        taste = personal_taste(
            stats["taste_pos"],
            stats["taste_neg"],
            stats["w_pos"],
            stats["w_neg"],
            t.params.taste_shrink,
        )
        channel_code = vocab.index("channel").get(channel or hcp.preferred_channel or "", -1)

        def rep(value):
            return np.repeat(np.asarray(value), n, axis=0)

        return RowContext(
            specialty=rep(spec),
            segment=rep(seg),
            region=rep(reg),
            preferred_channel=rep(pref),
            group=rep(grp),
            channel=np.full(n, channel_code, dtype=np.int32),
            item=item_rows,
            n=rep(stats["n"]),
            p=rep(stats["p"]),
            tag_n={k: rep(stats[f"tag_n_{k}"]) for k in TAG_KINDS},
            tag_p={k: rep(stats[f"tag_p_{k}"]) for k in TAG_KINDS},
            taste=rep(taste).astype(np.float32),
        )

    def evaluate(self, ctx: RowContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw features, logits and group contributions for prepared rows."""
        t = self.trained
        X = design_matrix(ctx, t.items, t.history, t.vocab, t.layout, t.params)
        logits, contributions = t.logits_and_contributions(X)
        return X, logits, contributions


def extend_history(t: TrainedModel, extra: ItemTable):
    """Pooled statistics padded for items met after training (no exposures yet).

    Their text-neighbour lift is computed against the training catalogue, so a
    new module starts from how each group responded to modules worded like it.
    """
    h = t.history
    n_train = len(h.item_n)
    pad = extra.n
    neighbours = text_neighbours(extra.zt, t.items.zt[:n_train])
    knn = knn_lift(neighbours, h.group_item_p, h.group_item_n, h.group_p, h.group_n, h.global_rate)
    spec_knn = specialty_knn_lift(
        t.vocab, neighbours, h.group_item_p, h.group_item_n, h.group_p, h.group_n, h.global_rate
    )
    groups = h.group_item_n.shape[0]
    return replace(
        h,
        item_n=np.concatenate([h.item_n, np.zeros(pad)]),
        item_p=np.concatenate([h.item_p, np.zeros(pad)]),
        group_item_n=np.hstack([h.group_item_n, np.zeros((groups, pad))]),
        group_item_p=np.hstack([h.group_item_p, np.zeros((groups, pad))]),
        group_knn=np.hstack([h.group_knn, knn]),
        specialty_knn=np.hstack([h.specialty_knn, spec_knn]),
    )


_state: dict[str, ServingModel | None] = {"model": None}
_state_lock = threading.Lock()


def active_model() -> ServingModel | None:
    """The active model, reloaded when another model has been activated (one cheap query)."""
    head = AffinityModel.objects.filter(is_active=True).values_list("id", "model_version").first()
    if head is None:
        return None
    current = _state["model"]
    if current is not None and current.row_id == head[0]:
        return current
    with _state_lock:
        current = _state["model"]
        if current is None or current.row_id != head[0]:
            blob = (
                AffinityModel.objects.filter(pk=head[0]).values_list("artifact", flat=True).first()
            )
            if blob is None:
                return None
            current = ServingModel(head[0], head[1], TrainedModel.from_bytes(blob))
            _state["model"] = current
    return current


def _label(slug: str) -> str:
    return slug.replace("-", " ")


def _column(names: list[str], name: str) -> int:
    return names.index(name)


def drivers_for_rows(
    serving: ServingModel, hcp: HCP, X: np.ndarray, contributions: np.ndarray, item_rows
) -> list[list[str]]:
    """Short human-readable reasons behind each score, strongest first (vectorised)."""
    t = serving.trained
    names = t.layout.names
    items = t.items
    keys = [f"{k}:personal" for k in TAG_KINDS] + [
        "semantic:personal",
        "item:popularity",
        "item:group_popularity",
        "channel:preferred",
        "hcp:activity",
    ]
    cols = [_column(names, k) for k in keys if k in names]
    picked = {k: i for i, k in enumerate(k for k in keys if k in names)}
    single = (X[:, cols] - t.mu[cols]) * t.weights[cols]  # (rows, len(cols))
    peers = " ".join(p for p in (hcp.specialty, hcp.segment) if p) or "similar"
    out = []
    for r, item_row in enumerate(item_rows):
        found: list[tuple[float, str]] = []
        for j, kind in enumerate(TAG_KINDS):
            total = float(contributions[r, j])
            if total < DRIVER_THRESHOLD:
                continue
            if kind == "theme":
                values = [t.vocab.theme[i] for i in np.flatnonzero(items.themes[item_row] > 0)]
            else:
                code = int(getattr(items, kind)[item_row])
                values = [getattr(t.vocab, kind)[code]] if code >= 0 else []
            if not values:
                continue
            value = ", ".join(_label(v) for v in values)
            mine = float(single[r, picked[f"{kind}:personal"]]) >= total / 2
            if kind in ("message", "theme"):
                text = (
                    f"engaged with {value} content"
                    if mine
                    else f"{peers} peers engage with {value} content"
                )
            else:
                noun = "tone" if kind == "tonality" else "format"
                text = f"prefers {value} {noun}" if mine else f"{peers} peers prefer {value} {noun}"
            found.append((total, text))
        semantic = float(contributions[r, GROUPS.index("semantic")])
        if "semantic:personal" in picked and semantic >= DRIVER_THRESHOLD:
            mine = float(single[r, picked["semantic:personal"]]) >= semantic / 2
            found.append(
                (
                    semantic,
                    "similar in wording to content they engaged with"
                    if mine
                    else f"wording resonates with {peers} peers",
                )
            )
        popularity = float(
            single[r, picked["item:popularity"]] + single[r, picked["item:group_popularity"]]
        )
        if popularity >= DRIVER_THRESHOLD:
            found.append((popularity, f"popular with {peers} HCPs"))
        preferred = float(single[r, picked["channel:preferred"]])
        if preferred >= DRIVER_THRESHOLD and hcp.preferred_channel:
            found.append(
                (preferred, f"on their preferred channel ({_label(hcp.preferred_channel)})")
            )
        activity = float(single[r, picked["hcp:activity"]])
        if activity >= DRIVER_THRESHOLD:
            found.append((activity, "engages more than most HCPs"))
        found.sort(key=lambda pair: -pair[0])
        out.append([text for _, text in found[:3]])
    return out


def _version_ids(versions_or_ids: Iterable) -> list[int]:
    return [int(getattr(v, "pk", v)) for v in versions_or_ids]


def popularity_scores(hcp: HCP, version_ids: list[int]) -> list[Score]:
    """Fallback without a trained model: smoothed engagement rate per version, flagged."""
    positive = Q(engagement_events__type="clicked") | Q(
        engagement_events__type="read", engagement_events__dwell_seconds__gte=READ_DWELL_SECONDS
    )
    stats = {
        row["id"]: row
        for row in ModuleVersion.objects.filter(id__in=version_ids)
        .annotate(
            exposures=Count("engagement_events__hcp", distinct=True),
            positives=Count("engagement_events__hcp", filter=positive, distinct=True),
        )
        .values("id", "exposures", "positives")
    }
    totals = EngagementEvent.objects.aggregate(n=Count("id"))
    prior = 0.05 if not totals["n"] else None
    if prior is None:
        all_rows = list(stats.values())
        exp = sum(s["exposures"] for s in all_rows)
        pos = sum(s["positives"] for s in all_rows)
        prior = (pos + 1.0) / (exp + 20.0)
    scores = []
    for vid in version_ids:
        s = stats.get(vid, {"exposures": 0, "positives": 0})
        p = (s["positives"] + 5.0 * prior) / (s["exposures"] + 5.0)
        contributions = dict.fromkeys(GROUPS, 0.0)
        contributions["baseline"] = float(logit(p))
        scores.append(
            Score(
                version_id=vid,
                probability=float(p),
                logit=float(logit(p)),
                contributions=contributions,
                drivers=["popular with HCPs overall (no trained model yet)"]
                if s["positives"]
                else [],
                model_version=None,
                fallback=True,
            )
        )
    return scores


def score_versions(
    hcp: HCP, versions_or_ids: Iterable, *, channel: str | None = None, with_drivers: bool = True
) -> list[Score]:
    """Score candidate versions for one HCP, in the order given.

    Vectorised: one query for the HCP's history, one matrix product for all
    candidates. Without a trained model it falls back to smoothed popularity
    and flags each score with ``fallback=True``.
    """
    version_ids = _version_ids(versions_or_ids)
    if not version_ids:
        return []
    serving = active_model()
    if serving is None:
        return popularity_scores(hcp, version_ids)
    rows = serving.item_rows(version_ids)
    known = rows >= 0
    ctx = serving.hcp_context(hcp, np.where(known, rows, 0), channel, time.time())
    X, logits, contributions = serving.evaluate(ctx)
    probabilities = sigmoid(logits)
    drivers = drivers_for_rows(serving, hcp, X, contributions, rows) if with_drivers else None
    scores = []
    as_lists = contributions.tolist()
    for i, vid in enumerate(version_ids):
        if not known[i]:
            continue  # a version id that does not exist: nothing to score
        scores.append(
            Score(
                version_id=vid,
                probability=float(probabilities[i]),
                logit=float(logits[i]),
                contributions=dict(zip(GROUPS, as_lists[i], strict=True)),
                drivers=drivers[i] if drivers is not None else [],
                model_version=serving.model_version,
            )
        )
    return scores


def _catalogue_rows(serving: ServingModel) -> np.ndarray:
    """The approved-now versions (or, when none, every version the model knows)."""
    ids = list(ModuleVersion.objects.approved_now().values_list("id", flat=True)[:5000])
    if ids:
        rows = serving.item_rows(ids)
        rows = rows[rows >= 0]
        if len(rows):
            return rows
    return np.arange(serving.trained.items.n)


def hcp_affinity(hcp: HCP) -> dict:
    """Predicted engagement probability per tag and channel value, everything else average."""
    serving = active_model()
    if serving is None:
        from content_modules.errors import Conflict

        raise Conflict(
            "No affinity model has been trained yet: POST /api/v1/affinity/train first.",
            field="model",
        )
    t = serving.trained
    now = time.time()
    rows = _catalogue_rows(serving)
    ctx = serving.hcp_context(hcp, rows, None, now)
    _X, logits, contributions = serving.evaluate(ctx)
    answer: dict = {
        "hcp": hcp.external_id,
        "model_version": serving.model_version,
        "n_events": EngagementEvent.objects.filter(hcp=hcp).count(),
    }
    for kind in TAG_KINDS:
        j = GROUPS.index(kind)
        rest = float(np.mean(logits - contributions[:, j]))
        values = getattr(t.vocab, kind)
        # A synthetic item per value: a group's contribution depends only on its
        # own columns, so the other kinds stay at the catalogue average.
        width = len(values)
        synthetic = ItemTable(
            ids=np.full(width, -1, dtype=np.int64),
            module_ids=np.full(width, -1, dtype=np.int64),
            message=np.full(width, -1, dtype=np.int16),
            tonality=np.full(width, -1, dtype=np.int16),
            format=np.full(width, -1, dtype=np.int16),
            themes=np.zeros((width, len(t.vocab.theme)), dtype=np.float32),
            z=np.zeros((width, t.items.z.shape[1]), dtype=np.float32),
            zt=np.zeros((width, t.items.zt.shape[1]), dtype=np.float32),
        )
        if kind == "theme":
            synthetic.themes[np.arange(width), np.arange(width)] = 1.0
        else:
            getattr(synthetic, kind)[:] = np.arange(width)
        value_ctx = serving.hcp_context(hcp, np.zeros(width, dtype=np.int64), None, now)
        value_ctx.item = np.arange(width) + t.items.n
        items = ItemTable.concat(t.items, synthetic)
        groups = t.history.group_item_n.shape[0]
        history = replace(
            t.history,
            item_n=np.concatenate([t.history.item_n, np.zeros(width)]),
            item_p=np.concatenate([t.history.item_p, np.zeros(width)]),
            group_item_n=np.hstack([t.history.group_item_n, np.zeros((groups, width))]),
            group_item_p=np.hstack([t.history.group_item_p, np.zeros((groups, width))]),
            group_knn=np.hstack([t.history.group_knn, np.zeros((groups, width), np.float32)]),
            specialty_knn=np.hstack(
                [t.history.specialty_knn, np.zeros((len(t.vocab.specialty) + 1, width))]
            ),
        )
        X = design_matrix(value_ctx, items, history, t.vocab, t.layout, t.params)
        _l, value_contrib = t.logits_and_contributions(X)
        answer[kind] = {
            value: round(float(sigmoid(rest + value_contrib[i, j])), 4)
            for i, value in enumerate(values)
        }
    answer["channel"] = {}
    for code, slug in enumerate(t.vocab.channel):
        ctx.channel = np.full(len(rows), code, dtype=np.int32)
        _X, channel_logits, _c = serving.evaluate(ctx)
        answer["channel"][slug] = round(float(sigmoid(np.mean(channel_logits))), 4)
    return answer


def group_prior_scores(specialty: str, segment: str, version_ids: list[int]) -> np.ndarray:
    """Probabilities for an HCP of this specialty and segment with no history or profile."""
    anonymous = HCP(external_id="prior", specialty=specialty, segment=segment)
    anonymous.pk = -1  # no events belong to it
    return np.array(
        [s.probability for s in score_versions(anonymous, version_ids, with_drivers=False)]
    )


def reset_cache() -> None:
    """Forget the loaded model (tests that swap models in one process)."""
    _state["model"] = None


__all__ = [
    "Score",
    "active_model",
    "group_prior_scores",
    "hcp_affinity",
    "popularity_scores",
    "reset_cache",
    "score_versions",
]
