"""The serving face answers what the training path computes, for every kind of HCP."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from django.utils import timezone

from content_modules.affinity.learning import data, scoring, serving, training
from content_modules.affinity.learning.columns import BLOCKS, Scope, build_layout
from content_modules.affinity.learning.evaluation import model_scores
from content_modules.affinity.learning.features import GROUPS, Pairs, compute_history
from content_modules.affinity.models import HCP

from .test_learning import _event, build_world, train_active


@pytest.fixture
def world(db, author, embedding_model):
    return build_world(author)


@pytest.fixture
def trained(world):
    scoring.reset_cache()
    model = train_active()
    yield model
    scoring.reset_cache()


def _hcps_of_every_kind(hcps, versions):
    """HCPs with history in both specialties, one the model never saw in a known group
    (with fresh events), and one whose profile the model does not know at all."""
    newcomer = HCP.objects.create(external_id="HCP-new", specialty="oncology", segment="field")
    stranger = HCP.objects.create(
        external_id="HCP-odd", specialty="dermatology", segment="", region="mars"
    )
    when = timezone.now()
    from content_modules.affinity.models import EngagementEvent

    EngagementEvent.objects.bulk_create(
        [_event(newcomer, v, "clicked", when) for v in versions[:2]]
        + [_event(stranger, versions[3], "delivered", when)]
    )
    return [hcps[0], hcps[1], hcps[2], newcomer, stranger]


def test_serving_face_scores_equal_the_training_paths_for_the_same_pairs(world, trained):
    # Given HCPs of every kind and the model's own readers over the database
    versions, hcps = world
    people = _hcps_of_every_kind(hcps, versions)
    model = serving.active_model()
    t = model.trained
    ds = training.Dataset(
        vocab=t.vocab,
        items=t.items,
        reducer=t.reducer,
        hcps=data.load_hcps(t.vocab),
        events=data.load_events(),
    )
    # The HCPs' statistics as of now, beside the model's pooled (group and item) ones.
    now = timezone.now().timestamp() + 1.0
    now_stats = compute_history(
        training.event_pairs(ds),
        ds.items,
        ds.hcps,
        ds.vocab,
        now,
        t.params.half_life_days,
        t.params.taste_shrink,
    )
    history = replace(
        t.history,
        **{
            f: getattr(now_stats, f) for f in t.history.__dataclass_fields__ if f.startswith("hcp_")
        },
    )
    ids = [v.pk for v in versions]
    item_rows = ds.items.rows(np.array(ids))
    channels = {None: None, "email": t.vocab.channel.index("email"), "web": -1}
    for hcp in people:
        for slug, code in channels.items():
            # When the face scores every version for the HCP
            scores = serving.score(hcp, ids, channel=slug, now=now)
            # And the training path scores the same (HCP, version, channel) pairs
            hcp_row = int(ds.hcps.rows(np.array([hcp.pk]))[0])
            preferred = t.vocab.index("channel").get(hcp.preferred_channel, -1)
            pairs = Pairs(
                hcp=np.full(len(ids), hcp_row),
                item=item_rows,
                t=np.full(len(ids), now),
                y=np.zeros(len(ids), np.float32),
                channel=np.full(len(ids), preferred if slug is None else code, np.int16),
            )
            expected = model_scores(t, pairs, ds, history)
            # Then the probabilities are the same
            np.testing.assert_allclose(scores.probabilities, expected, atol=1e-5, err_msg=slug)
            assert list(scores.version_ids) == ids and not scores.fallback


def test_explanations_sum_to_the_logit_and_equal_the_design_matrix(world, trained):
    versions, hcps = world
    people = _hcps_of_every_kind(hcps, versions)
    model = serving.active_model()
    ids = [v.pk for v in versions]
    rows = model.item_rows(ids)
    now = timezone.now().timestamp()
    names = model.driver_columns()
    for hcp in people:
        for channel in (None, "email", "web"):
            # When the face scores and explains every candidate
            scores = serving.score(hcp, ids, channel=channel, now=now)
            explained = scores.explain(range(len(ids)))
            contributions = np.array([[e.contributions[g] for g in GROUPS] for e in explained])
            # Then each candidate's contributions sum to its logit
            np.testing.assert_allclose(contributions.sum(axis=1), scores.logits, atol=1e-9)
            # And they, the logits and the drivers are the full design matrix's
            profile = model.hcp_profile(hcp, channel, now)
            X, logits, full = model.evaluate(model.broadcast(profile, rows))
            np.testing.assert_allclose(scores.logits, logits, atol=2e-4)
            np.testing.assert_allclose(contributions, full, atol=2e-4)
            cols = [model.trained.layout.position[n] for n in names]
            drivers = serving.drivers_for_rows(model, hcp, full, rows, names, X[:, cols])
            assert [e.drivers for e in explained] == drivers
    # And the group part is cached once per (specialty, segment, group): five here
    assert len(model._bases) == len({(h.specialty, h.segment) for h in people})


def test_an_unsaved_stand_in_gets_its_groups_prior_with_the_events_given(world, trained):
    versions, hcps = world
    ids = [v.pk for v in versions]
    cold = HCP(external_id="HCP-x", specialty="cardiology", segment="digital")
    cold.pk = -1
    saved_cold = HCP.objects.create(external_id="HCP-y", specialty="cardiology", segment="digital")
    # When a stand-in without events and a saved HCP without events are scored
    prior = serving.score(cold, ids).probabilities
    np.testing.assert_allclose(serving.score(saved_cold, ids).probabilities, prior, rtol=1e-9)
    # Then events handed in (types as EventType values) count as the HCP's history
    events = data.load_events(hcp_id=hcps[0].pk)
    codes = {v: k for k, v in serving.EVENT_CODES.items()}
    as_strings = dict(events, type=np.array([codes[int(c)] for c in events["type"]], object))
    now = timezone.now().timestamp()
    by_codes = serving.score(hcps[0], ids, events=events, now=now).probabilities
    by_strings = serving.score(hcps[0], ids, events=as_strings, now=now).probabilities
    read = serving.score(hcps[0], ids, now=now).probabilities
    np.testing.assert_array_equal(by_codes, by_strings)
    np.testing.assert_array_equal(by_codes, read)
    assert not np.allclose(by_codes, prior)


def test_unknown_versions_are_left_out_and_no_model_falls_back_to_popularity(world, trained):
    versions, hcps = world
    ids = [versions[0].pk, 10**9, versions[1].pk]
    scores = serving.score(hcps[0], ids)
    assert list(scores.keep) == [True, False, True]
    assert list(scores.version_ids) == [versions[0].pk, versions[1].pk]
    scoring.reset_cache()
    trained.is_active = False
    trained.save(update_fields=["is_active"])
    fallback = serving.score(hcps[0], ids)
    assert fallback.fallback and fallback.model_version is None
    assert fallback.explain([0])[0].contributions["baseline"] == pytest.approx(
        float(np.log(fallback.probabilities[0] / (1 - fallback.probabilities[0])))
    )


def test_every_column_belongs_to_one_block_of_the_table():
    from content_modules.affinity.learning.features import Params, Vocab

    vocab = Vocab(
        message=["a", "b"],
        theme=["t"],
        tonality=["x", "y", "z"],
        format=["f"],
        channel=["email", "web"],
        specialty=["s1", "s2"],
        segment=["g"],
        region=["r"],
        group=["s1|g"],
    )
    for text in (True, False):
        layout = build_layout(vocab, Params(text_features=text))
        # Then the blocks' spans tile the columns, in the table's order
        covered = [j for _b, s in layout.spans for j in range(s.start, s.stop)]
        assert covered == list(range(layout.width))
        assert [b.name for b, _s in layout.spans] == [
            b.name for b in BLOCKS if b.enabled(Params(text_features=text))
        ]
        assert len(set(layout.names)) == layout.width
        # And the personal and per-request columns are the few the HCP decides
        personal = {layout.names[j] for j in layout.columns(Scope.PERSONAL)}
        assert personal == {f"{k}:personal" for k in ("message", "theme", "tonality", "format")} | (
            {"semantic:personal"} if text else set()
        )
