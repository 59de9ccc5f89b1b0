"""The benchmark worlds' generator: each variant has the structure it claims, per seed."""

from __future__ import annotations

import numpy as np
import pytest

from bench import worlds

SMALL = {"n_hcps": 800, "n_modules": 160}


def _tag_design(world) -> np.ndarray:
    """One-hot of every tag of every module, with an intercept."""
    cols = [np.ones(world.n_modules)]
    for name, values in (
        ("message", worlds.MESSAGES),
        ("tonality", worlds.TONALITIES),
        ("format", worlds.FORMATS),
    ):
        codes = world.module_array(name)
        cols += [(codes == i).astype(float) for i in range(len(values))]
    themes = np.zeros((world.n_modules, len(worlds.THEMES)))
    for j, m in enumerate(world.modules):
        themes[j, m.themes] = 1.0
    return np.column_stack([*cols, themes])


def _r2(X: np.ndarray, y: np.ndarray) -> float:
    """Share of the variance of the columns of y that a least-squares fit on X explains."""
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    resid = y - X @ coef
    return 1.0 - float((resid**2).sum() / ((y - y.mean(axis=0)) ** 2).sum())


@pytest.mark.parametrize("variant", sorted(worlds.VARIANTS))
def test_a_world_is_the_same_for_a_seed_and_differs_between_seeds(variant):
    a = worlds.generate(variant, 3, **SMALL)
    b = worlds.generate(variant, 3, **SMALL)
    c = worlds.generate(variant, 4, **SMALL)
    assert [m.text for m in a.modules] == [m.text for m in b.modules]
    assert np.array_equal(a.truth, b.truth)
    for key in a.events:
        assert np.array_equal(a.events[key], b.events[key])
    assert [m.text for m in a.modules] != [m.text for m in c.modules]
    assert not np.array_equal(a.truth, c.truth)


@pytest.mark.parametrize("variant", worlds.TEXT_HEAVY)
def test_a_tag_only_model_cannot_recover_the_text_only_preference(variant):
    world = worlds.generate(variant, 0, **SMALL)
    tags = _tag_design(world)
    # Per group, the true preference that the text carries: no tag combination explains it...
    topic_part = world.parts["group_topic"] + world.parts["individual_topic"]
    assert _r2(tags, topic_part.T) < 0.15
    # ...while the hidden topics explain all of it.
    assert (
        _r2(np.column_stack([np.ones(world.n_modules), world.topic_matrix()]), topic_part.T) > 0.99
    )
    # And it is a large part of what separates one module from another for an HCP.
    logit = np.log(world.truth / (1 - world.truth))
    within = logit - logit.mean(axis=1, keepdims=True)
    assert topic_part.var(axis=1).mean() > 0.3 * within.var(axis=1).mean()


def test_the_tags_control_world_carries_almost_nothing_in_the_text():
    world = worlds.generate("tags", 0, **SMALL)
    logit = np.log(world.truth / (1 - world.truth))
    within = logit - logit.mean(axis=1, keepdims=True)
    topic_part = world.parts["group_topic"] + world.parts["individual_topic"]
    assert topic_part.var(axis=1).mean() < 0.1 * within.var(axis=1).mean()


@pytest.mark.parametrize("variant", worlds.TEXT_HEAVY)
def test_individual_taste_for_topics_is_as_strong_as_the_groups(variant):
    world = worlds.generate(variant, 1, **SMALL)
    group, individual = world.parts["group_topic"], world.parts["individual_topic"]
    ratio = individual.var(axis=1).mean() / group.var(axis=1).mean()
    assert ratio > 0.7, ratio


@pytest.mark.parametrize("variant", sorted(worlds.VARIANTS))
def test_bodies_mix_statements_and_the_topic_is_a_small_part_of_the_wording(variant):
    world = worlds.generate(variant, 2, **SMALL)
    for m in world.modules:
        phrases = [
            worlds.TOPICS[worlds.TOPIC_NAMES[k]][p]
            for k, p in zip(m.topics, m.phrasings, strict=True)
        ]
        assert len(m.clauses) >= 5
        with_topic = [c for c in m.clauses if any(p in c for p in phrases)]
        assert 1 <= len(with_topic) <= 2
        assert sum(len(p) for p in phrases) < 0.5 * len(m.text)
        # The tonality, the message and the format are restated in the words.
        assert m.clauses[0] in worlds.TONE_OPENERS[worlds.TONALITIES[m.tonality]]
        assert m.clauses[1] in worlds.CLAIMS[worlds.MESSAGES[m.message]]
        assert m.clauses[-1] in worlds.FORMAT_LINES[worlds.FORMATS[m.format]]


def test_paraphrase_world_says_some_topics_in_words_never_delivered():
    world = worlds.generate("paraphrase", 0, **SMALL)
    delivered = set(np.unique(world.events["module"]).tolist())
    seen = {
        (k, p)
        for j, m in enumerate(world.modules)
        if j in delivered
        for k, p in zip(m.topics, m.phrasings, strict=True)
    }
    new_only = {
        (k, p) for m in world.modules if m.new for k, p in zip(m.topics, m.phrasings, strict=True)
    } - seen
    assert new_only, "some phrasings appear only in modules the log never delivered"
    assert all(world.modules[j].new is False for j in delivered)
    phrasings_per_topic = {k: {p for kk, p in seen | new_only if kk == k} for k in range(6)}
    assert min(len(v) for v in phrasings_per_topic.values()) >= 8


@pytest.mark.parametrize("variant", sorted(worlds.VARIANTS))
def test_cold_hcps_have_at_most_two_events_and_are_a_quarter(variant):
    world = worlds.generate(variant, 0, **SMALL)
    counts = np.bincount(world.events["hcp"], minlength=world.n_hcps)
    assert counts[world.cold].max() <= 2
    assert 0.18 < world.cold.mean() < 0.32
    warm, cold = world.evaluation_hcps(300, 100)
    assert len(cold) / (len(warm) + len(cold)) == 0.25
    assert world.cold[cold].all() and not world.cold[warm].any()


def test_sparse_world_has_thirty_to_forty_deliveries_at_a_ten_percent_click_rate():
    world = worlds.generate("sparse", 0, **SMALL)
    ev = world.events
    delivered = ev["type"] == worlds.EVENT_DELIVERED
    per_hcp = np.bincount(ev["hcp"][delivered], minlength=world.n_hcps)[~world.cold]
    assert per_hcp.min() >= 30 and per_hcp.max() <= 40
    clicks = (ev["type"] == worlds.EVENT_CLICKED).sum()
    assert 0.08 < clicks / delivered.sum() < 0.12


def test_modules_differ_in_quality_and_hcps_in_responsiveness():
    world = worlds.generate("mixed", 0, **SMALL)
    quality = world.parts["quality"][0]
    responsiveness = world.parts["responsiveness"][:, 0]
    assert 0.25 < quality.std() < 0.45
    assert 0.4 < responsiveness.std() < 0.6
    # A responsive HCP clicks more on everything: their true probabilities sit higher.
    top, bottom = np.argsort(responsiveness)[-50:], np.argsort(responsiveness)[:50]
    assert world.truth[top].mean() > 1.5 * world.truth[bottom].mean()


def test_the_topic_oracle_ranks_groups_nearly_as_their_truth_does():
    from bench.affinity_family import oracle_ndcg, topic_oracle_scores

    world = worlds.generate("mixed", 0)
    _warm, cold = world.evaluation_hcps(0, 150, seed=0)
    truth = world.truth[cold]
    oracle = oracle_ndcg(topic_oracle_scores(world, cold), truth).mean()
    ceiling = oracle_ndcg(world.group_mean_truth()[cold], truth).mean()
    # Told the hidden topics, a regression on the log comes close to the groups' truth
    # (it cannot know a never-delivered module's quality, nor estimate without noise)
    assert 0.85 * ceiling < oracle < ceiling
    # and above the modules' true popularity over all HCPs (nothing per group)
    popular = np.tile(world.truth.mean(axis=0), (len(cold), 1))
    assert oracle > oracle_ndcg(popular, truth).mean()
