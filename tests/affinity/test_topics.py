"""Clause-level text: the clauses that restate a tag are dropped, what the text adds is kept."""

from __future__ import annotations

import numpy as np

from bench import worlds
from bench.affinity_family import EmbeddingCache, world_dataset
from content_modules.affinity import embeddings
from content_modules.affinity.learning import topics, training
from content_modules.affinity.learning.features import Params


def _r2(X: np.ndarray, Y: np.ndarray) -> float:
    X = np.column_stack([X, np.ones(len(X))])
    Yc = Y - Y.mean(axis=0)
    coef = np.linalg.lstsq(X, Yc, rcond=None)[0]
    return 1.0 - float(((Yc - X @ coef) ** 2).sum() / (Yc**2).sum())


def test_split_clauses_cuts_fields_into_sentences():
    assert topics.split_clauses("Title", "Act now: it works. Ask us!", "", "Learn more") == [
        "Title",
        "Act now:",
        "it works.",
        "Ask us!",
        "Learn more",
    ]


def test_clauses_restating_a_tag_are_dropped_and_the_hidden_topic_is_kept(
    embedding_model, tmp_path
):
    # Given a world whose bodies mix tag restatements with one or two topic sentences
    world = worlds.generate("mixed", 0, n_modules=90, n_hcps=50)
    cache = EmbeddingCache(tmp_path / "cache.npz")
    ds = world_dataset(world, cache, Params())
    clauses = [
        topics.split_clauses(m.headline, m.body, m.key_message, m.call_to_action)
        for m in world.modules
    ]
    flat = [c for cl in clauses for c in cl]
    item = np.repeat(np.arange(len(clauses)), [len(cl) for cl in clauses])
    vectors = embeddings.encode(flat)
    is_topic = np.array(
        [
            any(
                worlds.TOPICS[worlds.TOPIC_NAMES[k]][p] in clause
                for k, p in zip(world.modules[j].topics, world.modules[j].phrasings, strict=True)
            )
            for clause, j in zip(flat, item, strict=True)
        ]
    )
    # When the clause filter is fitted on the catalogue
    centroids, keep = topics.fit_clause_filter(vectors, item, ds.items, ds.vocab)
    kept = keep[topics.nearest(centroids, vectors)]
    # Then nearly every topic sentence is kept and most restatements are dropped
    assert kept[is_topic].mean() > 0.95
    assert kept[~is_topic].mean() < 0.5
    # And so is boilerplate no tag explains: the headings' "what is new", the calls to action
    boilerplate = np.array(
        [
            c in ("what is new", "Read the evidence summary", "Find out more", "Learn more")
            for c in flat
        ]
    )
    assert boilerplate.sum() > len(world.modules)
    assert kept[boilerplate].mean() < 0.05
    # And the module's text vector says more about the topic than the whole body does
    tags = np.column_stack(
        [
            ds.items.tag_matrix(k, len(getattr(ds.vocab, k)), np.arange(ds.items.n))
            for k in ("message", "theme", "tonality", "format")
        ]
    )
    whole = embeddings.encode([m.text for m in world.modules])
    mine = topics.kept_clause_means(centroids, keep, vectors, item, len(clauses))
    truth = world.topic_matrix()
    assert _r2(truth, mine) > _r2(truth, whole)
    assert _r2(tags, mine) < 0.5 * _r2(tags, whole)


def test_a_version_met_after_training_gets_the_vector_training_gave_it(embedding_model, tmp_path):
    world = worlds.generate("sparse", 1, n_modules=120, n_hcps=50)
    ds = world_dataset(world, EmbeddingCache(tmp_path / "cache.npz"), Params())
    reducer = ds.reducer
    assert reducer.clause_mode
    # Serving sees one version on its own: its clauses and the stored centroids only.
    clauses = topics.split_clauses(
        *(
            getattr(world.modules[7], f)
            for f in ("headline", "body", "key_message", "call_to_action")
        )
    )
    vectors = embeddings.encode(clauses)
    z, zt = reducer.transform(reducer.item_vectors(vectors, np.zeros(len(clauses), int), 1))
    np.testing.assert_allclose(z[0], ds.items.z[7], atol=1e-4)
    np.testing.assert_allclose(zt[0], ds.items.zt[7], atol=1e-4)
    # And the reducer survives the model artifact's round trip.
    back = training.TrainedModel.from_bytes(training.fit(ds, Params()).to_bytes()).reducer
    assert back.clause_mode
    np.testing.assert_array_equal(back.centroids, reducer.centroids)
    np.testing.assert_array_equal(back.keep, reducer.keep)
