"""The per-item term: each item's engagement beyond its features, shrunk by empirical Bayes.

It is fitted after the regression (``training.item_offsets``), stored in the
model's item table, read through the ``item:offset`` column with a weight of
one, and absent (with its column) from models stored before it existed.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from content_modules.affinity.learning import scoring, training
from content_modules.affinity.learning.features import Params, sigmoid
from content_modules.affinity.models import AffinityModel

from .test_learning import build_world, train_active


def _draws(true_offsets: np.ndarray, rows_per_item: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    item = np.repeat(np.arange(len(true_offsets)), rows_per_item)
    eta = rng.normal(-2.0, 0.7, len(item))  # what the regression already explains
    y = (rng.random(len(item)) < sigmoid(eta + true_offsets[item])).astype(np.float32)
    return eta, y, item


def test_planted_item_effects_are_recovered_with_their_spread():
    truth = np.random.default_rng(1).normal(0.0, 0.5, 300)
    eta, y, item = _draws(truth, rows_per_item=400)
    # Two more items in the table that no row ever exposed
    offsets, spread = training.item_offsets(eta, y, item, len(truth) + 2)
    assert np.corrcoef(offsets[:300], truth)[0, 1] > 0.9
    assert 0.4 < spread < 0.6
    assert offsets[300:].tolist() == [0.0, 0.0]


def test_without_item_effects_the_terms_shrink_to_almost_nothing():
    eta, y, item = _draws(np.zeros(300), rows_per_item=60)
    offsets, spread = training.item_offsets(eta, y, item, 300)
    # Noise alone (a raw per-item log-odds would spread by about 0.5 here) is shrunk away
    assert spread < 0.1
    assert np.abs(offsets).max() < 0.1


def test_an_item_with_few_rows_is_shrunk_more_than_one_with_many():
    truth = np.r_[np.full(150, 0.8), np.full(150, -0.8)]
    rows = np.r_[np.repeat(np.arange(300), 200), np.full(5, 300)]
    rng = np.random.default_rng(3)
    eta = np.full(len(rows), -2.0)
    p = sigmoid(eta + np.r_[truth, 0.8][rows])
    y = (rng.random(len(rows)) < p).astype(np.float32)
    y[-5:] = 1.0  # the thin item clicked every time
    offsets, _spread = training.item_offsets(eta, y, rows, 301)
    well_known = offsets[:150].mean()
    assert 0.5 < well_known < 1.0
    # Five clicks in five rows would be a huge raw log-odds; the prior holds it near the rest
    assert offsets[300] < 2.0


@pytest.mark.django_db
def test_a_trained_model_stores_its_item_terms_and_scores_with_them(author, embedding_model):
    versions, hcps = build_world(author)
    scoring.reset_cache()
    stored = train_active()
    model = training.TrainedModel.from_bytes(bytes(stored.artifact))
    assert model.params.item_offsets
    assert len(model.items.offset) == model.items.n
    assert model.metrics["item_offsets"]["items"] > 0
    j = model.layout.position["item:offset"]
    assert (model.coef[j], model.mu[j], model.sd[j]) == (1.0, 0.0, 1.0)
    # The served logit moves one for one with an item's term
    scores = scoring.score_versions(hcps[0], versions)
    rows = model.items.rows(np.array([s.version_id for s in scores]))
    bumped = model.items.offset.copy()
    bumped[rows[0]] += 0.5
    model.items.offset = bumped
    blob = model.to_bytes()
    AffinityModel.objects.filter(pk=stored.pk).update(artifact=blob)
    scoring.reset_cache()
    again = scoring.score_versions(hcps[0], versions)
    before = np.array([s.probability for s in scores])
    after = np.array([s.probability for s in again])
    moved = np.log(after / (1 - after)) - np.log(before / (1 - before))
    assert moved[0] == pytest.approx(0.5, abs=1e-3)
    assert np.abs(moved[1:]).max() < 1e-3
    scoring.reset_cache()


@pytest.mark.django_db
def test_a_model_stored_before_item_terms_loads_without_the_column(author, embedding_model):
    build_world(author)
    old = train_active(params=Params(item_offsets=False))
    # As the code before item terms stored it: no such parameter and no such array
    with np.load(io.BytesIO(bytes(old.artifact)), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "item_offset"}
    meta = json.loads(arrays["meta"].tobytes().decode())
    del meta["params"]["item_offsets"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)

    loaded = training.TrainedModel.from_bytes(buf.getvalue())
    assert loaded.params.item_offsets is False
    assert "item:offset" not in loaded.layout.names
    assert Params.stored(meta["params"]) == loaded.params


def test_item_terms_lower_the_held_out_log_loss_where_modules_differ_in_quality(
    embedding_model, tmp_path
):
    from dataclasses import replace

    from bench import worlds
    from bench.affinity_family import EmbeddingCache, world_dataset

    # Given a world whose modules differ in a quality no feature records
    world = worlds.generate("mixed", 0, quality_sd=0.6)
    ds = world_dataset(world, EmbeddingCache(tmp_path / "cache.npz"), Params())
    # When the model is fitted with and without its per-item terms
    with_terms = training.fit(ds, Params())
    without = training.fit(ds, replace(Params(), item_offsets=False))
    # Then the calibration check (a fit that never saw the latest window) reads the
    # terms too, and they make its held-out log-loss lower (here by 8e-4, where the
    # two checks' fits alone differ by 1e-7)
    assert with_terms.metrics["item_offsets"]["sd"] > 0.1
    held_out = with_terms.metrics["calibration"]["log_loss"]
    assert held_out < without.metrics["calibration"]["log_loss"] - 4e-4
