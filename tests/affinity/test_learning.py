"""The affinity model learns planted preferences, explains itself and handles cold HCPs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from content_modules.affinity import training_runs
from content_modules.affinity.embeddings import embed_versions
from content_modules.affinity.learning import evaluation, scoring, training
from content_modules.affinity.learning.features import GROUPS, sigmoid
from content_modules.affinity.models import HCP, AffinityModel, EngagementEvent
from content_modules.library.models import TagKind, VersionStatus
from tests.factories import ensure_vocabulary, force_status, make_module, make_user, tag

TONES = ["clinical", "empathetic", "urgent"]
MESSAGES = ["efficacy", "safety", "dosing", "mechanism-of-action", "access"]
FORMATS = ["text", "image", "infographic"]
# The planted truth: each specialty loves one tone; everything else is rarely clicked.
LOVED_TONE = {"cardiology": "empathetic", "oncology": "clinical"}
P_LOVED, P_OTHER = 0.6, 0.06


def build_world(
    author, *, n_modules: int = 24, n_hcps: int = 60, deliveries: int = 16, seed: int = 7
):
    """Approved, embedded modules; HCPs of two specialties; events drawn from the planted truth."""
    ensure_vocabulary()
    rng = np.random.default_rng(seed)
    versions = []
    for i in range(n_modules):
        tone = TONES[i % 3]
        message = MESSAGES[i % 5]
        version = make_module(
            author,
            title=f"{tone} {message} {i}",
            headline=f"A {tone} look at {message.replace('-', ' ')} ({i})",
            body=f"This {tone} piece discusses {message.replace('-', ' ')} for your patients.",
            message=tag(TagKind.MESSAGE, message),
            tonality=tag(TagKind.TONALITY, tone),
            format=tag(TagKind.FORMAT, FORMATS[(i // 3) % 3]),
        )
        force_status(version, VersionStatus.APPROVED)
        versions.append(version)
    embed_versions([v.pk for v in versions])
    hcps = [
        HCP.objects.create(
            external_id=f"HCP-{i}",
            specialty="cardiology" if i % 2 == 0 else "oncology",
            segment="digital" if i % 4 < 2 else "field",
        )
        for i in range(n_hcps)
    ]
    start = timezone.now() - timedelta(days=100)
    events = []
    for hcp in hcps:
        for _ in range(deliveries):
            v = versions[rng.integers(len(versions))]
            when = start + timedelta(days=float(rng.uniform(0, 99)))
            events.append(_event(hcp, v, "delivered", when))
            loved = v.tonality.slug == LOVED_TONE[hcp.specialty]
            if rng.random() < (P_LOVED if loved else P_OTHER):
                events.append(_event(hcp, v, "clicked", when + timedelta(minutes=5)))
    EngagementEvent.objects.bulk_create(events)
    return versions, hcps


FIXTURE_REASON = (
    "test fixture: build_world plants a group-level preference only, where group "
    "popularity is as good as any model, so the gate need not pass the model"
)


def train_active(actor=None, **kwargs) -> AffinityModel:
    """Train through the gate and put the model in use, with an audited reason if it was rejected.

    For tests of what a model does once in use (scoring, pages, delivery), not of the gate.
    """
    stored = training_runs.affinity_model_train(actor=actor, **kwargs)
    if not stored.is_active:
        training_runs.affinity_model_activate(actor=None, model_id=stored.pk, reason=FIXTURE_REASON)
    return AffinityModel.objects.get(pk=stored.pk)


def _event(hcp, version, kind, when):
    return EngagementEvent(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module_id=version.module_id,
        version=version,
        type=kind,
        occurred_at=when,
        channel="email",
    )


@pytest.fixture
def world(db, author, embedding_model):
    return build_world(author)


@pytest.fixture
def trained(world):
    scoring.reset_cache()
    model = train_active()
    yield model
    scoring.reset_cache()


def test_model_beats_baselines_on_held_out_events(world):
    # Given events drawn from a planted specialty x tone preference
    dataset = training.load_dataset()
    # When the model is fitted on the earliest 80% and scored on the latest 20%
    results = evaluation.evaluate_dataset(dataset)
    methods = results["methods"]
    # Then it ranks held-out engagement better than random and global popularity
    assert methods["model"]["auc"] > methods["random"]["auc"]
    assert methods["model"]["auc"] > methods["popularity"]["auc"]
    assert methods["model"]["ndcg@5"] > methods["random"]["ndcg@5"]
    assert results["calibration"]["brier"] < results["test_positive_rate"]


def test_scores_follow_the_planted_preference(world, trained):
    versions, hcps = world
    cardiologist = next(h for h in hcps if h.specialty == "cardiology")
    scores = scoring.score_versions(cardiologist, versions)
    by_tone = {tone: [] for tone in TONES}
    for version, score in zip(versions, scores, strict=True):
        by_tone[version.tonality.slug].append(score.probability)
    loved = np.mean(by_tone["empathetic"])
    assert loved > np.mean(by_tone["clinical"])
    assert loved > np.mean(by_tone["urgent"])
    assert all(s.model_version == trained.model_version and not s.fallback for s in scores)


def test_contributions_sum_to_the_logit_of_the_probability(world, trained):
    versions, hcps = world
    for score in scoring.score_versions(hcps[1], versions):
        assert set(score.contributions) == set(GROUPS)
        total = sum(score.contributions.values())
        assert total == pytest.approx(score.logit, abs=1e-6)
        assert float(sigmoid(total)) == pytest.approx(score.probability, abs=1e-6)


def test_drivers_name_the_preferred_tone(world, trained):
    versions, hcps = world
    cardiologist = next(h for h in hcps if h.specialty == "cardiology")
    empathetic = [v for v in versions if v.tonality.slug == "empathetic"]
    drivers = [d for s in scoring.score_versions(cardiologist, empathetic) for d in s.drivers]
    assert any("empathetic tone" in d for d in drivers)


def test_cold_hcp_gets_the_prior_of_its_specialty_and_segment(world, trained):
    versions, _ = world
    ids = [v.pk for v in versions]
    cold = HCP.objects.create(external_id="HCP-new", specialty="cardiology", segment="digital")
    cold_scores = np.array([s.probability for s in scoring.score_versions(cold, ids)])
    prior = scoring.group_prior_scores("cardiology", "digital", ids)
    other_group = scoring.group_prior_scores("oncology", "digital", ids)
    np.testing.assert_allclose(cold_scores, prior, rtol=1e-9)
    assert not np.allclose(prior, other_group)
    empathetic = np.array([v.tonality.slug == "empathetic" for v in versions])
    assert cold_scores[empathetic].mean() > cold_scores[~empathetic].mean()


def test_one_hcps_statistics_equal_the_bulk_computation(world, trained):
    # Given random event histories (unknown items, repeats, reads long and short)
    from content_modules.affinity.learning.features import (
        EVENT_CODES,
        TAG_KINDS,
        collapse_events,
        hcp_statistics,
        single_hcp_statistics,
    )

    serving = scoring.active_model()
    t = serving.trained
    rng = np.random.default_rng(5)
    now = timezone.now().timestamp()
    for n in (0, 1, 7, 40):
        item = rng.integers(-1, t.items.n, n)
        when = now - rng.uniform(0, 200 * 86400, n)
        etype = rng.choice(list(EVENT_CODES.values()), n).astype(np.int8)
        dwell = rng.choice([0.0, 3.0, 12.0, np.nan], n)
        # When one HCP's statistics are computed directly and by the bulk path
        one = single_hcp_statistics(
            item, when, etype, dwell, t.items, serving._tags().raw, now, 45.0,
            serving._tags().widths,
        )  # fmt: skip
        pairs = collapse_events(
            np.zeros(n, np.int64), item, when, etype, dwell, np.full(n, -1, np.int16), t.items.n
        )
        bulk = hcp_statistics(pairs, t.items, t.vocab, 1, now, 45.0)
        # Then every statistic is the same
        keys = ["n", "p", "taste_pos", "taste_neg", "w_pos", "w_neg"]
        keys += [f"tag_{x}_{k}" for k in TAG_KINDS for x in "np"]
        assert set(keys) == set(bulk)
        for key in keys:
            np.testing.assert_allclose(one[key], bulk[key], rtol=1e-6, atol=1e-9, err_msg=key)


def test_an_event_without_a_version_counts_for_the_modules_latest(world, trained):
    # Given two HCPs with the same clicks, one naming the version and one only the module
    from content_modules.delivery.services import _snapshot

    versions, _ = world
    when = timezone.now() - timedelta(days=2)
    for name, with_version in (("HCP-v", True), ("HCP-m", False)):
        hcp = HCP.objects.create(external_id=name, specialty="cardiology", segment="digital")
        for v in versions[:3]:
            event = _event(hcp, v, "clicked", when)
            event.version = v if with_version else None
            event.save()
    # When the serving path reads their histories
    serving = scoring.active_model()
    now = timezone.now().timestamp()
    stats = {}
    for name in ("HCP-v", "HCP-m"):
        snapshot = _snapshot(name)  # what a recommendation reads
        hcp, events = snapshot.hcp, snapshot.events
        assert sorted(events["version"]) == sorted(v.pk for v in versions[:3])
        stats[name] = serving.hcp_profile(hcp, None, now, events).stats
    # Then both count the same clicks on the same (latest) versions
    for key, value in stats["HCP-v"].items():
        np.testing.assert_allclose(stats["HCP-m"][key], value, err_msg=key)


def test_artifact_is_plain_arrays_and_round_trips(world, trained):
    versions, hcps = world
    blob = bytes(AffinityModel.objects.get(pk=trained.pk).artifact)
    loaded = training.TrainedModel.from_bytes(blob)  # np.load(..., allow_pickle=False) inside
    again = training.TrainedModel.from_bytes(loaded.to_bytes())
    assert again.layout.names == loaded.layout.names
    np.testing.assert_array_equal(again.coef, loaded.coef)
    before = [s.probability for s in scoring.score_versions(hcps[0], versions)]
    scoring.reset_cache()
    after = [s.probability for s in scoring.score_versions(hcps[0], versions)]
    # Equal up to the recency decay of the seconds between the two calls.
    assert after == pytest.approx(before, rel=1e-6)
    assert trained.embedding_model and len(trained.embedding_model_sha256) == 64


def test_training_versions_models_and_swaps_the_active_one(world, trained):
    versions, hcps = world
    # When a second model is trained
    second = train_active(actor=make_user("admin"))
    # Then it is the only active one and scoring reloads it
    assert list(AffinityModel.objects.filter(is_active=True)) == [second]
    assert second.model_version.endswith("#2") and trained.model_version.endswith("#1")
    assert scoring.score_versions(hcps[0], versions[:1])[0].model_version == second.model_version
    # When the first is re-activated, the swap is complete in one step
    training_runs.affinity_model_activate(actor=None, model_id=trained.pk, reason=FIXTURE_REASON)
    assert list(AffinityModel.objects.filter(is_active=True).values_list("pk", flat=True)) == [
        trained.pk
    ]
    assert scoring.score_versions(hcps[0], versions[:1])[0].model_version == trained.model_version


def test_activating_an_unknown_model_leaves_the_active_one(world, trained):
    from content_modules.errors import NotFound

    with pytest.raises(NotFound):
        training_runs.affinity_model_activate(actor=None, model_id=uuid.uuid4())
    assert AffinityModel.objects.get(is_active=True).pk == trained.pk


def test_without_a_model_scores_fall_back_to_popularity_and_say_so(world):
    versions, hcps = world
    scoring.reset_cache()
    scores = scoring.score_versions(hcps[0], versions)
    assert len(scores) == len(versions)
    assert all(s.fallback and s.model_version is None for s in scores)
    assert all(0 < s.probability < 1 for s in scores)


def test_training_reads_events_in_a_constant_number_of_queries(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    versions, hcps = world
    with CaptureQueriesContext(connection) as first:
        before = training.load_dataset()
    # Twice the events: still the same queries (arrays, never one row object per event).
    EngagementEvent.objects.bulk_create(
        [
            _event(h, versions[i % len(versions)], "delivered", timezone.now() - timedelta(days=1))
            for i, h in enumerate(hcps * 10)
        ]
    )
    with CaptureQueriesContext(connection) as second:
        after = training.load_dataset()
    assert len(after.events["t"]) == len(before.events["t"]) + len(hcps) * 10
    assert len(second.captured_queries) == len(first.captured_queries)
