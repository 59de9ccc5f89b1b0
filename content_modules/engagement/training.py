"""Fit the engagement model from a training run's dataset, store it, label the HCPs.

Runs in the affinity training run (``affinity.training_runs``), on the events
that run already read, so the two models always describe the same history and
each new affinity model comes with freshly computed microsegments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content_modules.affinity import localtime
from content_modules.affinity.models import HCP, AffinityModel
from content_modules.analytics import rollups

from . import learning
from .models import EngagementModel, Microsegment

logger = logging.getLogger(__name__)
UPDATE_CHUNK = 5_000
# Above this share of HCPs changing microsegment, the analytics rollups are recounted
# once (~12 s per 1,000,000 events) instead of moving each HCP's rows (~0.09 ms per
# moved event): the two cost the same near 13% of the events moving.
REBUILD_SHARE = 0.10


def fit_settings() -> learning.FitSettings:
    return learning.FitSettings(
        min_per_week=settings.ENGAGEMENT_MIN_PER_WEEK,
        max_per_week=settings.ENGAGEMENT_MAX_PER_WEEK,
        n_segments=settings.ENGAGEMENT_MICROSEGMENTS,
    )


def hcp_zones(hcp_ids: np.ndarray) -> list[str]:
    """Each HCP's zone name, in the order of ``hcp_ids``."""
    zone_of = {
        pk: localtime.zone_name(timezone=tz, region=region)
        for pk, tz, region in HCP.objects.values_list("id", "timezone", "region").iterator(
            chunk_size=20_000
        )
    }
    default = settings.DEFAULT_HCP_TIMEZONE
    return [zone_of.get(int(pk), default) for pk in hcp_ids]


def deliveries_from_dataset(ds) -> learning.Deliveries:
    """The dataset's events as localised deliveries, HCP rows as in ``ds.hcps``."""
    ev = ds.events
    rows = ds.hcps.rows(ev["hcp"]) if len(ev["hcp"]) else np.zeros(0, np.int64)
    known = rows >= 0
    item_order = np.argsort(ds.items.ids)
    pos = np.searchsorted(ds.items.ids, ev["version"], sorter=item_order)
    pos = np.clip(pos, 0, max(len(ds.items.ids) - 1, 0))
    item = (
        np.where(ds.items.ids[item_order[pos]] == ev["version"], item_order[pos], -1)
        if len(ds.items.ids)
        else np.full(len(ev["version"]), -1)
    )
    d = learning.join_deliveries(
        rows[known],
        ev["t"][known],
        ev["type"][known],
        ev["channel"][known],
        item[known],
        ev["dwell"][known],
    )
    return learning.localise(d, hcp_zones(ds.hcps.ids), localtime.local_slots)


def previous_params() -> learning.EngagementParams | None:
    model = EngagementModel.objects.filter(is_active=True).first()
    if model is None:
        return None
    try:
        return learning.EngagementParams.from_bytes(bytes(model.artifact))
    except (ValueError, TypeError, KeyError):
        logger.warning("active engagement model %s cannot be read; segments restart", model)
        return None


def relabel_hcps(ids: np.ndarray, segment: np.ndarray, keys: list[str]) -> int:
    """Give each HCP (``ids``) the key of its segment; answer how many changed.

    Only HCPs whose microsegment changes are written. When many change, the
    analytics triggers stand aside and both rollups are recounted once at the end
    (``analytics.rollups.deferred``); otherwise the triggers move the few HCPs' rows.
    """
    current = dict(HCP.objects.values_list("id", "microsegment"))
    moves = {
        key: [i for i in ids[segment == j].tolist() if current.get(i) != key]
        for j, key in enumerate(keys)
    }
    changed = sum(len(m) for m in moves.values())
    bulk = changed > REBUILD_SHARE * max(len(current), 1)
    with rollups.deferred() if bulk else transaction.atomic():
        for key, members in moves.items():
            for start in range(0, len(members), UPDATE_CHUNK):
                HCP.objects.filter(id__in=members[start : start + UPDATE_CHUNK]).update(
                    microsegment=key
                )
    return changed


def engagement_model_train(
    ds,
    *,
    affinity_model: AffinityModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> EngagementModel:
    """Fit on ``ds`` (an affinity ``Dataset``), store and activate the result.

    The HCPs' ``microsegment`` follows the new model in the same transaction.
    """
    say = progress or (lambda _msg: None)
    say("fitting channel, send-time and saturation")
    d = deliveries_from_dataset(ds)
    vocab = ds.vocab
    params, _state, segment = learning.fit(
        d,
        ds.hcps.group,
        len(vocab.group),
        list(vocab.channel),
        settings=fit_settings(),
        item_tags={
            "message": ds.items.message,
            "tonality": ds.items.tonality,
            "format": ds.items.format,
        },
        tag_names={"message": vocab.message, "tonality": vocab.tonality, "format": vocab.format},
        previous=previous_params(),
    )
    params.group_names = list(vocab.group)
    counts = np.bincount(d.channel[d.channel >= 0], minlength=len(vocab.channel))
    params.metrics["channel_share"] = [
        round(float(c) / max(int(counts.sum()), 1), 4) for c in counts
    ]
    now = timezone.now()
    version = f"{now:%Y-%m-%dT%H:%M:%S}Z#e{EngagementModel.objects.count() + 1}"
    say("storing the engagement model and the microsegments")
    with transaction.atomic():
        EngagementModel.objects.filter(is_active=True).update(is_active=False)
        stored = EngagementModel.objects.create(
            model_version=version,
            trained_at=now,
            affinity_model=affinity_model,
            n_deliveries=d.n,
            n_hcps=len(ds.hcps.ids),
            metrics=params.metrics,
            artifact=params.to_bytes(),
            is_active=True,
        )
        sizes = np.bincount(segment, minlength=len(params.segment_ids))
        Microsegment.objects.bulk_create(
            [
                Microsegment(
                    model=stored,
                    key=key,
                    label=label[:200],
                    size=int(sizes[j]),
                    features=params.segment_features[j],
                )
                for j, (key, label) in enumerate(
                    zip(params.segment_ids, params.segment_labels, strict=True)
                )
            ]
        )
        relabel_hcps(ds.hcps.ids, segment, params.segment_ids)
    from . import serving

    serving.reset_cache()
    return stored
