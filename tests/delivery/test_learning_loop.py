"""The learning loop: exploration with logged propensities, stored answers, events joined, caps."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from content_modules.affinity.learning.evaluation import logged_propensities
from content_modules.affinity.models import HCP
from content_modules.delivery.models import Recommendation, RecommendationItem
from content_modules.delivery.policy import choose
from tests.factories import api_client

from .helpers import approved, event, recommend

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


@pytest.fixture
def hcp(db):
    return HCP.objects.create(external_id="HCP-1", specialty="cardiology")


def test_every_answer_is_stored_with_its_items(author, engine_client, hcp):
    for _ in range(4):
        approved(author)
    body = recommend(engine_client, k=3, channel="email", context={"journey_stage": "trial"}).json()
    rec = Recommendation.objects.get(pk=body["recommendation_id"])
    assert rec.hcp == hcp and rec.policy == "greedy" and not rec.explored
    assert rec.request["channel"] == "email" and rec.request["context"] == {
        "journey_stage": "trial"
    }
    stored = list(rec.items.order_by("rank").values_list("rank", "module_id", "propensity"))
    assert stored == [(i["rank"], i["module"], 1.0) for i in body["items"]]


def test_without_explore_every_propensity_is_one(author, engine_client, hcp):
    for _ in range(5):
        approved(author)
    items = recommend(engine_client, k=5).json()["items"]
    assert [i["propensity"] for i in items] == [1.0] * 5
    assert not any(i["explored"] for i in items)


def test_explore_logs_epsilon_greedy_propensities(author, engine_client, hcp, settings):
    # Given six candidates and an exploration rate of 0.5
    settings.DELIVERY_EPSILON = 0.5
    for _ in range(6):
        approved(author)
    seen_explored = False
    for _ in range(20):
        body = recommend(engine_client, k=3, explore=True).json()
        rec = Recommendation.objects.get(pk=body["recommendation_id"])
        assert rec.policy == "epsilon-greedy(0.5)"
        for position, item in enumerate(body["items"]):
            pool = 6 - position
            greedy_p = 0.5 + 0.5 / pool
            explored_p = 0.5 / pool
            # Then each propensity is exactly what epsilon-greedy gave that item at that rank
            expected = explored_p if item["explored"] else greedy_p
            assert item["propensity"] == pytest.approx(expected, abs=1e-6)
            seen_explored |= item["explored"]
        logged = dict(rec.items.values_list("rank", "propensity"))
        assert logged == {i["rank"]: pytest.approx(i["propensity"]) for i in body["items"]}
    assert seen_explored


def test_policy_propensities_match_observed_choice_frequencies():
    # The logged propensity is the real probability of the choice: check by simulation.
    scores = np.array([0.9, 0.5, 0.4, 0.1])
    rng = np.random.default_rng(3)
    counts = np.zeros(4)
    logged = {}
    runs = 20_000
    mask = np.ones(4, dtype=bool)
    for _ in range(runs):
        (pick,) = choose(scores, [mask], np.zeros(4, bool), explore=True, epsilon=0.2, rng=rng)
        counts[pick.index] += 1
        logged[pick.index] = pick.propensity
    for index, propensity in logged.items():
        assert counts[index] / runs == pytest.approx(propensity, abs=0.01)


def test_events_carrying_the_id_join_to_what_was_shown_and_at_which_rank(
    author, engine_client, hcp
):
    # Given a recommendation of two modules
    for _ in range(3):
        approved(author)
    body = recommend(engine_client, k=2, channel="email").json()
    rec_id = body["recommendation_id"]
    second = body["items"][1]
    # When the engine reports a click on the second item with the recommendation id
    events = {
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "hcp": "HCP-1",
                "module": second["module"],
                "type": kind,
                "occurred_at": timezone.now().isoformat(),
                "channel": "email",
                "recommendation_id": rec_id,
            }
            for kind in ("delivered", "clicked")
        ]
    }
    assert engine_client.post("/api/v1/events", events, format="json").json()["accepted"] == 2
    # Then the logged recommendation shows the click at rank 2 and nothing at rank 1
    logged = engine_client.get(f"/api/v1/recommendations/{rec_id}").json()
    by_rank = {i["rank"]: i for i in logged["items"]}
    assert [e["type"] for e in by_rank[2]["events"]] == ["delivered", "clicked"]
    assert by_rank[1]["events"] == []
    assert logged["unmatched_events"] == []
    # And the affinity evaluation reads the same join with the logged propensity
    rows = logged_propensities()
    for row in rows:  # SQLite answers the hex form of the uuid, PostgreSQL the dashed one
        row["recommendation"] = str(uuid.UUID(row["recommendation"]))
    first = body["items"][0]
    assert sorted(rows, key=lambda r: r["rank"]) == [
        {
            "recommendation": rec_id,
            "module": first["module"],
            "propensity": 1.0,
            "rank": 1,
            "hcp": hcp.pk,
            "clicked": 0,
        },
        {
            "recommendation": rec_id,
            "module": second["module"],
            "propensity": 1.0,
            "rank": 2,
            "hcp": hcp.pk,
            "clicked": 1,
        },
    ]


def test_logged_recommendation_is_404_when_unknown_and_403_for_authors(engine_client, author):
    missing = uuid.uuid4()
    assert engine_client.get(f"/api/v1/recommendations/{missing}").status_code == 404
    assert api_client(author).get(f"/api/v1/recommendations/{missing}").status_code == 403


def test_recently_delivered_module_is_not_recommended_again(author, engine_client, hcp, settings):
    settings.DELIVERY_FREQUENCY_CAP_DAYS = 7
    fresh, delivered, long_ago = approved(author), approved(author), approved(author)
    event(hcp, delivered, "delivered", when=timezone.now() - timedelta(days=2))
    event(hcp, long_ago, "delivered", when=timezone.now() - timedelta(days=30))
    items = recommend(engine_client, k=2).json()["items"]
    assert {i["module"] for i in items} == {fresh.module_id, long_ago.module_id}
    assert not any(i["frequency_capped"] for i in items)


def test_capped_module_fills_in_when_nothing_else_qualifies(author, engine_client, hcp):
    only = approved(author, message="safety")
    other = approved(author, message="efficacy")
    event(hcp, only, "delivered", when=timezone.now() - timedelta(hours=3))
    # Top-k: the uncapped module first, then the capped one as nothing else is left
    items = recommend(engine_client, k=2).json()["items"]
    assert [(i["module"], i["frequency_capped"]) for i in items] == [
        (other.module_id, False),
        (only.module_id, True),
    ]
    # Slots: the only safety module is capped, yet fills its slot
    items = recommend(engine_client, slots=["safety"]).json()["items"]
    assert [(i["module"], i["frequency_capped"]) for i in items] == [(only.module_id, True)]
    assert RecommendationItem.objects.filter(frequency_capped=True).count() == 2


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.5, 0.9]), max_size=40),
    k=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_greedy_top_k_shortcut_picks_what_the_position_loop_picks(scores, k, data):
    # Given scores with many ties and some capped candidates
    from content_modules.delivery import policy

    values = np.array(scores, dtype=float)
    capped = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores))), dtype=bool
    )
    everywhere = np.ones(len(values), dtype=bool)
    rng = np.random.default_rng(0)
    # When top k is chosen greedily (the shortcut) and position by position (the loop)
    shortcut = policy.choose(values, [everywhere] * k, capped, explore=False, epsilon=0.1, rng=rng)
    loop = policy.choose(
        values, [everywhere.copy() for _ in range(k)], capped, explore=False, epsilon=0.1, rng=rng
    )
    # Then the picks are the same, in the same order
    assert shortcut == loop
