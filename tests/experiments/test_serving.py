"""Recommendations and next best actions follow the HCP's arm and say so."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from content_modules.affinity.learning import serving
from content_modules.affinity.models import HCP
from content_modules.delivery.models import Recommendation
from content_modules.experiments import assignment
from content_modules.library.models import VersionStatus
from tests.delivery.helpers import approved, event, in_state, recommend
from tests.factories import api_client

from .helpers import hcps_in, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user):
    return api_client(admin_user)


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


@pytest.fixture
def modules(author):
    return [approved(author) for _ in range(3)]


@pytest.fixture
def fake_model(monkeypatch):
    """A 'model' that prefers the highest version id (popularity prefers the most clicked)."""

    def score(hcp, version_ids, **kwargs):
        ids = np.asarray(version_ids, dtype=np.int64)
        order = np.argsort(np.argsort(ids))
        p = 0.1 + 0.01 * order
        logits = np.log(p / (1 - p))
        return serving.Scores(
            keep=np.ones(len(ids), dtype=bool),
            version_ids=ids,
            logits=logits,
            probabilities=p,
            model_version="fake#1",
            fallback=False,
            _explainer=serving._PopularityExplainer(logits, [[] for _ in ids]),
        )

    monkeypatch.setattr(serving, "score", score)


def test_each_arm_follows_its_policy_and_the_answer_says_which(
    admin, engine_client, modules, fake_model
):
    # Given the oldest module is the most clicked, and the model prefers the newest
    oldest, newest = modules[0], modules[-1]
    for i in range(5):
        clicker = HCP.objects.create(external_id=f"OTHER-{i}")
        event(clicker, oldest, "clicked")
    exp = start(
        admin,
        holdout=0.2,
        arms=[
            {"name": "model", "policy": "model"},
            {"name": "popular", "policy": "popularity"},
            {"name": "random", "policy": "random"},
        ],
    )

    def first_module(external_id):
        body = recommend(engine_client, hcp=external_id, k=3).json()
        return body, body["items"][0]["module"]

    # Then an HCP in the model arm gets the model's order, one in the popularity arm
    # the most clicked first, and the holdout the plain model
    (body, top) = first_module(hcps_in(exp["id"], "model")[0])
    assert body["experiment"] == {"id": exp["id"], "arm": "model"} and top == newest.module_id
    (body, top) = first_module(hcps_in(exp["id"], "popular")[0])
    assert body["experiment"] == {"id": exp["id"], "arm": "popular"} and top == oldest.module_id
    assert body["fallback"] is True
    (body, top) = first_module(hcps_in(exp["id"], "holdout")[0])
    assert body["experiment"] == {"id": exp["id"], "arm": "holdout"} and top == newest.module_id
    # and the random arm chooses uniformly, logging 1/n of the n left at each rank
    body = recommend(engine_client, hcp=hcps_in(exp["id"], "random")[0], k=3).json()
    assert body["experiment"]["arm"] == "random"
    assert [i["propensity"] for i in body["items"]] == pytest.approx([1 / 3, 1 / 2, 1.0])
    assert body["policy"] == "epsilon-greedy(1)"
    # and every answer is logged with its experiment and arm
    logged = Recommendation.objects.filter(experiment_id=exp["id"])
    assert sorted(logged.values_list("arm", flat=True)) == sorted(
        ["model", "popular", "holdout", "random"]
    )
    assert recommend(engine_client, hcp="HCP-x").json()["experiment"] is not None


def test_random_arm_is_uniform_over_the_gated_candidates(admin, engine_client, modules):
    exp = start(admin, arms=[{"name": "A", "policy": "model"}, {"name": "R", "policy": "random"}])
    external_id = hcps_in(exp["id"], "R")[0]
    firsts = [
        recommend(engine_client, hcp=external_id, k=1).json()["items"][0]["module"]
        for _ in range(60)
    ]
    counts = [firsts.count(v.module_id) for v in modules]
    assert sum(counts) == 60 and min(counts) >= 8  # each about 20 of 60


def test_a_fixed_arm_serves_only_its_modules_and_stays_gated(admin, engine_client, author, modules):
    # Given a fixed arm naming two approved modules, a draft, an expired and a web-only one
    draft = in_state(author, VersionStatus.DRAFT)
    expired = approved(author, expires_on=timezone.localdate() - timedelta(days=1))
    web_only = approved(author, channels=("web",))
    fixed = [modules[0].module_id, modules[1].module_id]
    exp = start(
        admin,
        arms=[
            {"name": "A", "policy": "model"},
            {
                "name": "F",
                "policy": "fixed",
                "modules": [*fixed, draft.module_id, expired.module_id, web_only.module_id],
            },
        ],
    )
    external_id = hcps_in(exp["id"], "F")[0]

    # When the engine asks for ten by email
    body = recommend(engine_client, hcp=external_id, k=10, channel="email").json()

    # Then only the approved, unexpired, email modules of the arm come back
    assert body["experiment"] == {"id": exp["id"], "arm": "F"}
    assert sorted(i["module"] for i in body["items"]) == sorted(fixed)
    # and the other arm sees everything approved
    other = recommend(engine_client, hcp=hcps_in(exp["id"], "A")[0], k=10, channel="email")
    assert len(other.json()["items"]) == 3


def test_requests_outside_the_traffic_follow_no_experiment(admin, engine_client, modules):
    exp = start(admin, brand="cardiozen", channel="email")
    inside = recommend(engine_client, brand="cardiozen", channel="email").json()
    assert inside["experiment"]["id"] == exp["id"]
    assert recommend(engine_client, brand="cardiozen", channel="web").json()["experiment"] is None
    assert recommend(engine_client, channel="email").json()["experiment"] is None  # any brand


def test_a_stopped_experiment_is_followed_no_more(admin, engine_client, modules):
    exp = start(admin)
    assert recommend(engine_client).json()["experiment"] is not None
    admin.post(f"/api/v1/experiments/{exp['id']}/stop")
    assert recommend(engine_client).json()["experiment"] is None


def test_the_logged_recommendation_names_its_experiment(admin, engine_client, modules):
    exp = start(admin)
    body = recommend(engine_client).json()
    logged = engine_client.get(f"/api/v1/recommendations/{body['recommendation_id']}").json()
    assert logged["experiment"] == body["experiment"]
    assert logged["experiment"]["id"] == exp["id"]


def test_assignment_is_stable_and_near_the_configured_split():
    running = assignment.Running(
        id=42,
        holdout=0.1,
        arms=(
            assignment.Arm("A", "model", frozenset()),
            assignment.Arm("B", "random", frozenset()),
            assignment.Arm("C", "popularity", frozenset()),
        ),
        brand=None,
        market=None,
        channel=None,
    )
    n = 30_000
    arms = [assignment.arm_for(running, f"HCP-{i}").name for i in range(n)]
    assert arms == [assignment.arm_for(running, f"HCP-{i}").name for i in range(n)]
    share = {a: arms.count(a) / n for a in ("holdout", "A", "B", "C")}
    assert share["holdout"] == pytest.approx(0.1, abs=0.01)
    for a in "ABC":
        assert share[a] == pytest.approx(0.3, abs=0.015)
    # a fixed value, so the split is the same in every process and after a restart
    assert assignment.unit(42, "HCP-1") == pytest.approx(
        int(__import__("hashlib").sha256(b"42:HCP-1").hexdigest()[:16], 16) / 2**64
    )
    # another experiment shuffles HCPs independently
    other = assignment.Running(**{**running.__dict__, "id": 43})
    same = sum(assignment.arm_for(other, f"HCP-{i}").name == arms[i] for i in range(n))
    assert same / n == pytest.approx(0.1 * 0.1 + 3 * 0.3 * 0.3, abs=0.02)


# --- next best actions --------------------------------------------------------------------


def ask(client, **body):
    body.setdefault("hcp", "HCP-1")
    body.setdefault("channels", ["email"])
    return client.post("/api/v1/next-best-actions", body, format="json")


def test_next_best_actions_follow_a_fixed_arm_and_say_so(admin, engine_client, author, modules):
    expired = approved(author, expires_on=timezone.localdate() - timedelta(days=1))
    fixed = [modules[2].module_id, expired.module_id]
    exp = start(
        admin,
        arms=[{"name": "A", "policy": "model"}, {"name": "F", "policy": "fixed", "modules": fixed}],
    )
    body = ask(engine_client, hcp=hcps_in(exp["id"], "F")[0], k=3).json()
    assert body["experiment"] == {"id": exp["id"], "arm": "F"}
    assert [a["module"] for a in body["actions"]] == [modules[2].module_id]
    other = ask(engine_client, hcp=hcps_in(exp["id"], "A")[0], k=3).json()
    assert other["experiment"]["arm"] == "A" and len(other["actions"]) == 3
    rec = Recommendation.objects.get(pk=body["recommendation_id"])
    assert (rec.kind, rec.experiment_id, rec.arm) == ("next_best_action", exp["id"], "F")


def test_next_best_actions_in_a_random_arm_log_uniform_propensities(admin, engine_client, modules):
    exp = start(admin, arms=[{"name": "A", "policy": "model"}, {"name": "R", "policy": "random"}])
    body = ask(engine_client, hcp=hcps_in(exp["id"], "R")[0], k=3).json()
    assert body["experiment"]["arm"] == "R"
    assert [a["propensity"] for a in body["actions"]] == pytest.approx(
        [1 / 3, 1 / 2, 1.0], abs=1e-5
    )


def test_next_best_actions_outside_the_traffic_follow_no_experiment(admin, engine_client, modules):
    start(admin, channel="rep_email")
    assert ask(engine_client, channels=["email"]).json()["experiment"] is None
    assert ask(engine_client, channels=["email", "rep_email"]).json()["experiment"] is not None
