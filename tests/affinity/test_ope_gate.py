"""The gate's off-policy figures: each new model's doubly robust click rate on the logged
recommendations, beside the active model's, stored and shown on the model page."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from django.utils import timezone

from content_modules.affinity import training_runs
from content_modules.affinity.learning import scoring
from content_modules.affinity.models import AffinityModel, EngagementEvent, ModelStatus
from content_modules.delivery.models import Recommendation, RecommendationItem
from tests.factories import make_user

from .worlds import build_noise_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def log_exploring_recommendations(versions, hcps, n: int, seed: int = 1) -> None:
    """n logged slates of 3, shown in uniformly random order (propensity 1/3 at rank 1),
    each delivered, a tenth clicked."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    recs, items, events = [], [], []
    for _ in range(n):
        hcp = hcps[int(rng.integers(len(hcps)))]
        rec = Recommendation(hcp=hcp, hcp_external_id=hcp.external_id, policy="uniform")
        recs.append(rec)
        slate = rng.choice(len(versions), 3, replace=False)
        for rank, j in enumerate(slate, start=1):
            v = versions[int(j)]
            items.append(
                RecommendationItem(
                    recommendation=rec,
                    rank=rank,
                    module_id=v.module_id,
                    version=v,
                    score=0.1,
                    propensity=1 / 3 if rank == 1 else 1 / 2,
                    explored=True,
                )
            )
        top = versions[int(slate[0])]
        for kind in ("delivered",) + (("clicked",) if rng.random() < 0.1 else ()):
            events.append(
                EngagementEvent(
                    event_id=uuid.uuid4(),
                    hcp=hcp,
                    module_id=top.module_id,
                    version=top,
                    type=kind,
                    occurred_at=now,
                    channel="email",
                    recommendation_id=rec.pk,
                )
            )
    Recommendation.objects.bulk_create(recs)
    RecommendationItem.objects.bulk_create(items)
    EngagementEvent.objects.bulk_create(events)


def test_each_model_carries_its_off_policy_estimate_beside_the_active_ones(
    db, author, embedding_model, client
):
    scoring.reset_cache()
    # The small world with nothing to learn trains fast; its first model is put in
    # use by hand, as an admin may, so the second has an active model beside it.
    versions, hcps = build_noise_world(author)
    first = training_runs.affinity_model_train(actor=None)
    AffinityModel.objects.filter(pk=first.pk).update(
        is_active=True, status=ModelStatus.FORCED, override_reason="test"
    )
    log_exploring_recommendations(versions, hcps, n=600)

    second = training_runs.affinity_model_train(actor=None)

    figures = second.metrics["off_policy"]
    mine, active = figures["challenger"], figures["active"]
    assert mine["n"] == 600 and active["n"] == 600
    for estimate in (mine, active):
        lo, hi = estimate["dr_ci95"]
        assert 0 <= lo <= estimate["dr"] <= hi <= 1
        assert estimate["ips_ci95"][0] <= estimate["ips"] <= estimate["ips_ci95"][1]
    # The logged slates were shown at random: no model is clearly worse on them
    assert figures["worse"] is False
    client.force_login(make_user("admin", is_staff=True))
    page = client.get("/affinity/model/").content.decode()
    assert "Off-policy click rate" in page
    assert f"{mine['dr']:.4f}" in page and "600 decisions" in page
    scoring.reset_cache()
