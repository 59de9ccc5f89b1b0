"""GET /api/v1/experiments/{id}: per-arm results from the events carrying the ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.affinity.models import HCP
from content_modules.experiments import stats
from content_modules.library.models import ModuleVersion
from tests.delivery.helpers import approved, event, recommend
from tests.factories import api_client

from .helpers import hcps_in, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user):
    return api_client(admin_user)


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


def served(client, external_id: str, k: int = 2) -> tuple[str, list[ModuleVersion]]:
    body = recommend(client, hcp=external_id, k=k).json()
    versions = [ModuleVersion.objects.get(pk=i["version_id"]) for i in body["items"]]
    return body["recommendation_id"], versions


def test_results_count_deliveries_and_clicks_per_arm_from_the_events(admin, engine_client, author):
    for _ in range(3):
        approved(author)
    exp = start(
        admin,
        holdout=0.2,
        min_detectable_lift=0.05,
        arms=[{"name": "A", "policy": "model"}, {"name": "B", "policy": "random"}],
    )
    yesterday = timezone.now() - timedelta(days=1)
    a_hcps, b_hcps = hcps_in(exp["id"], "A", 2), hcps_in(exp["id"], "B", 2)
    for external_id in a_hcps + b_hcps:
        HCP.objects.create(external_id=external_id)

    # Arm A: two HCPs, two items each; every item delivered yesterday, one clicked twice
    for external_id in a_hcps:
        rec, versions = served(engine_client, external_id)
        hcp = HCP.objects.get(external_id=external_id)
        for v in versions:
            event(hcp, v, "delivered", rec=rec, when=yesterday)
        if external_id == a_hcps[0]:
            event(hcp, versions[0], "clicked", rec=rec)
            event(hcp, versions[0], "clicked", rec=rec)  # one delivery clicked twice: one
    # Arm B: one HCP's two items delivered today and both clicked; the other's answer
    # is never delivered, but one of its items is clicked (not in any rate)
    rec, versions = served(engine_client, b_hcps[0])
    hcp = HCP.objects.get(external_id=b_hcps[0])
    for v in versions:
        event(hcp, v, "delivered", rec=rec)
        event(hcp, v, "clicked", rec=rec)
    rec, versions = served(engine_client, b_hcps[1])
    event(HCP.objects.get(external_id=b_hcps[1]), versions[0], "clicked", rec=rec)
    # and events without a recommendation id, or of answers outside it, never count
    event(hcp, versions[0], "delivered")

    body = admin.get(f"/api/v1/experiments/{exp['id']}").json()

    a, b = body["arms"]
    assert (a["name"], a["hcps"], a["recommendations"], a["logged_items"]) == ("A", 2, 2, 4)
    assert (a["deliveries"], a["clicks"], a["rate"]) == (4, 1, 0.25)
    assert a["rate_ci95"] == pytest.approx(list(stats.wilson(1, 4)), abs=1e-6)
    assert a["lift"] is None and a["lift_ci95"] is None
    assert (b["hcps"], b["logged_items"], b["deliveries"], b["clicks"]) == (2, 4, 2, 2)
    assert b["successes_without_delivery"] == 1
    assert b["lift"] == pytest.approx(0.75)
    assert b["lift_ci95"] == pytest.approx(list(stats.newcombe(1, 4, 2, 2)), abs=1e-6)
    assert b["lift_cs95"] == pytest.approx(list(stats.lift_cs(1, 4, 2, 2)), abs=1e-6)
    assert b["lift_cs95"][0] < b["lift_ci95"][0]  # always-valid is wider
    assert "not yet significant" in body["verdict"]
    assert body["verdict_basis"] == "lift_cs95"
    # a daily series per arm that a chart can draw
    days = [d["date"] for d in a["daily"]]
    assert days == sorted({yesterday.date().isoformat(), timezone.now().date().isoformat()})
    assert [d["deliveries"] for d in a["daily"]] == [4, 0]
    assert [d["cumulative_deliveries"] for d in b["daily"]] == [0, 2]
    assert b["daily"][-1]["cumulative_lift"] == pytest.approx(0.75)
    # the power figure: what detecting 5 points over the first arm's 25% needs
    assert body["power"]["baseline_rate"] == 0.25
    assert body["power"]["sample_size_per_arm"] == stats.sample_size_per_arm(0.25, 0.05)
    assert body["power"]["enough"] is False
    assert body["holdout_results"]["deliveries"] == 0


def test_events_after_stop_still_count_for_answers_made_while_running(admin, engine_client, author):
    approved(author)
    exp = start(admin)
    external_id = hcps_in(exp["id"], "A")[0]
    hcp = HCP.objects.create(external_id=external_id)
    rec, versions = served(engine_client, external_id, k=1)
    admin.post(f"/api/v1/experiments/{exp['id']}/stop")
    event(hcp, versions[0], "delivered", rec=rec)
    event(hcp, versions[0], "clicked", rec=rec)
    after, _ = served(engine_client, external_id, k=1)  # no longer in the experiment
    event(hcp, versions[0], "delivered", rec=after)

    a = admin.get(f"/api/v1/experiments/{exp['id']}").json()["arms"][0]
    assert (a["deliveries"], a["clicks"], a["recommendations"]) == (1, 1, 1)


def test_results_read_in_a_fixed_number_of_queries(
    admin, engine_client, author, django_assert_max_num_queries
):
    approved(author)
    exp = start(admin)
    for external_id in hcps_in(exp["id"], "A", 3) + hcps_in(exp["id"], "B", 3):
        recommend(engine_client, hcp=external_id)
    with django_assert_max_num_queries(10):
        assert admin.get(f"/api/v1/experiments/{exp['id']}").status_code == 200


def test_bad_min_detectable_lift_query_is_400(admin):
    exp = start(admin)
    response = admin.get(f"/api/v1/experiments/{exp['id']}?min_detectable_lift=lots")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"min_detectable_lift"}
