"""Offline evaluation: ranking metrics, IPS/SNIPS on logged data, the evaluate_affinity command."""

from __future__ import annotations

import uuid
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from content_modules.affinity.learning import evaluation, scoring, training
from content_modules.affinity.models import AffinityModel, EngagementEvent
from content_modules.delivery.models import Recommendation, RecommendationItem
from tests.affinity.test_learning import build_world


def test_ndcg_is_one_for_the_ideal_order_and_lower_otherwise():
    rng = np.random.default_rng(1)
    gains = rng.random(12)
    ideal = np.sort(gains)[::-1]
    assert evaluation.ndcg_at_k(ideal, gains) == pytest.approx(1.0)
    assert evaluation.ndcg_at_k(ideal[::-1], gains) < 1.0


def test_ranking_metrics_reward_putting_positives_first():
    groups = np.repeat(np.arange(20), 10)
    y = np.tile((np.arange(10) < 2).astype(float), 20)
    perfect = evaluation.ranking_metrics(groups, y, y + 0.0)
    reverse = evaluation.ranking_metrics(groups, y, -y)
    assert perfect["ndcg@5"] == pytest.approx(1.0) and perfect["recall@5"] == pytest.approx(1.0)
    assert perfect["auc"] == pytest.approx(1.0)
    assert reverse["ndcg@5"] < perfect["ndcg@5"] and reverse["recall@5"] == 0.0
    assert perfect["n_hcps"] == 20


def test_ips_and_snips_recover_the_target_policys_click_rate_from_logged_data():
    # Given a logging policy with known, unequal propensities over four items
    rng = np.random.default_rng(3)
    click_rate = np.array([0.05, 0.20, 0.10, 0.35])
    logging = np.array([0.4, 0.3, 0.2, 0.1])
    n = 40_000
    shown = rng.choice(4, size=n, p=logging)
    clicked = (rng.random(n) < click_rate[shown]).astype(float)
    # When we estimate the click rate of "always show item 3" from those logs
    target = (shown == 3).astype(float)
    estimate = evaluation.ips_snips(clicked, logging[shown], target)
    # Then both estimators land within four standard errors of the truth,
    # while the naive logged click rate does not.
    tolerance = 4 * estimate["ips_stderr"]
    assert abs(estimate["ips"] - click_rate[3]) < tolerance
    assert abs(estimate["snips"] - click_rate[3]) < tolerance
    assert abs(clicked.mean() - click_rate[3]) > tolerance
    assert estimate["n"] == n


def test_ips_with_no_logged_items_is_empty():
    assert evaluation.ips_snips(np.array([]), np.array([]), np.array([]))["ips"] is None


@pytest.fixture
def world(db, author, embedding_model):
    scoring.reset_cache()
    yield build_world(author, n_hcps=40, deliveries=14)
    scoring.reset_cache()


def _log_recommendation(hcp, versions, propensities, *, clicked_rank=None, with_event=True):
    rec = Recommendation.objects.create(
        hcp=hcp, hcp_external_id=hcp.external_id, policy="epsilon-greedy(0.1)"
    )
    for rank, (version, p) in enumerate(zip(versions, propensities, strict=True), start=1):
        RecommendationItem.objects.create(
            recommendation=rec,
            rank=rank,
            module_id=version.module_id,
            version=version,
            score=0.1,
            propensity=p,
        )
        if with_event:
            kind = "clicked" if rank == clicked_rank else "delivered"
            EngagementEvent.objects.create(
                event_id=uuid.uuid4(),
                hcp=hcp,
                module_id=version.module_id,
                version=version,
                type=kind,
                occurred_at=timezone.now(),
                recommendation_id=rec.pk,
            )
    return rec


def test_logged_propensities_read_recommendation_items_with_feedback(world):
    versions, hcps = world
    shown = _log_recommendation(hcps[0], versions[:2], [0.9, 0.05], clicked_rank=1)
    _log_recommendation(hcps[1], versions[2:4], [0.8, 0.1], with_event=False)  # never delivered
    rows = evaluation.logged_propensities()
    assert {(r["recommendation"], r["rank"]) for r in rows} == {
        (str(shown.pk), 1),
        (str(shown.pk), 2),
    }
    by_rank = {r["rank"]: r for r in rows}
    assert by_rank[1]["clicked"] == 1 and by_rank[2]["clicked"] == 0
    assert by_rank[1]["propensity"] == 0.9 and by_rank[1]["hcp"] == hcps[0].pk


def test_evaluate_affinity_reports_baselines_and_stores_results(world):
    versions, hcps = world
    for i, hcp in enumerate(hcps[:6]):
        _log_recommendation(hcp, versions[i : i + 3], [0.8, 0.5, 0.5], clicked_rank=1 + i % 2)
    call_command("train_affinity", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("evaluate_affinity", stdout=out, stderr=StringIO())
    text = out.getvalue()
    for label in (
        "model",
        "random",
        "global popularity",
        "popularity in specialty x segment",
        "regression on tags x specialty/segment",
        "the same plus text, x specialty and HCP",
        "model without text features",
    ):
        assert label in text
    assert "IPS" in text and "SNIPS" in text
    stored = AffinityModel.objects.latest("trained_at").metrics["evaluation"]
    assert stored["holdout_fraction"] == 0.2
    assert set(stored["methods"]) == {
        "model",
        "random",
        "popularity",
        "group_popularity",
        "tag_regression",
        "text_regression",
        "model_without_text",
    }
    for method in stored["methods"].values():
        assert {"auc", "ndcg@5", "recall@5"} <= set(method)
    assert stored["off_policy"]["n"] == 6
    assert stored["off_policy"]["logged_click_rate"] == pytest.approx(6 / 18)


def test_evaluate_affinity_without_a_model_fails_clearly(db):
    with pytest.raises(CommandError, match="No affinity model has been trained yet"):
        call_command("evaluate_affinity", stdout=StringIO(), stderr=StringIO())


def test_train_affinity_without_events_fails_clearly(db):
    with pytest.raises(CommandError, match="no engagement events"):
        call_command("train_affinity", stdout=StringIO(), stderr=StringIO())


def test_train_affinity_prints_the_new_version(world):
    out, err = StringIO(), StringIO()
    call_command("train_affinity", stdout=out, stderr=err)
    model = AffinityModel.objects.get()
    assert f"Trained {model.model_version}" in out.getvalue()
    assert f"gate: {model.status} ({model.reason})" in out.getvalue()
    assert "training" in err.getvalue()  # the progress bar
    assert training.TrainedModel.from_bytes(bytes(model.artifact)).n_events == model.n_events
