"""Champion / challenger: a model is put in use only when it beats popularity and the active one.

The gate (``learning/gate.py``) holds out the latest fifth of events, fits the
challenger on the rest, and compares NDCG@5 and log-loss per HCP with
popularity within specialty x segment and with the active model's recipe;
the margins come from a bootstrap over HCPs of the paired difference.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from content_modules.affinity import training_runs
from content_modules.affinity.learning import scoring
from content_modules.affinity.learning.features import Params
from content_modules.affinity.models import AffinityModel, ModelStatus, TrainingRequest
from content_modules.audit.models import AuditEntry
from contentapp.celery import app as celery_app
from tests.factories import api_client, make_user

from .worlds import build_learnable_world, build_noise_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# A recipe that cannot learn: no text, no popularity features, regularised to a constant.
CRIPPLED = Params(C=1e-6, text_features=False, popularity_features=False)


@pytest.fixture
def learnable(db, author, embedding_model):
    scoring.reset_cache()
    yield build_learnable_world(author)
    scoring.reset_cache()


@pytest.fixture
def noise(db, author, embedding_model):
    scoring.reset_cache()
    yield build_noise_world(author)
    scoring.reset_cache()


def _beats(figures: dict) -> None:
    for metric in ("ndcg@5", "log_loss"):
        assert figures[metric]["diff"] > figures[metric]["margin"] > 0, metric


def test_a_model_that_beats_popularity_is_activated_and_a_worse_one_stays_inactive(learnable):
    # Given no model in use, when one is trained on learnable engagement
    first = training_runs.affinity_model_train(actor=None)
    # Then it beats popularity within specialty x segment by the margins and is activated
    assert first.status == ModelStatus.PASSED and first.is_active
    assert first.reason == "beats popularity within specialty x segment"
    gate = first.metrics["gate"]
    assert gate["passed"] is True and gate["champion"] is None
    _beats(gate["popularity"])
    activated = AuditEntry.objects.get(action="affinity.model_activated")
    assert activated.data["model_version"] == first.model_version
    assert activated.data["gate"] == first.reason

    # When a worse recipe is trained next
    worse = training_runs.affinity_model_train(actor=None, params=CRIPPLED)
    # Then it is stored as rejected, with the reason, and the first model stays in use
    assert worse.status == ModelStatus.REJECTED and not worse.is_active
    assert "does not beat popularity within specialty x segment" in worse.reason
    assert f"worse than the active model {first.model_version}" in worse.reason
    champion = worse.metrics["gate"]["champion"]
    assert champion["model_version"] == first.model_version and champion["passed"] is False
    assert champion["ndcg@5"]["diff"] < -champion["ndcg@5"]["margin"]
    assert list(AffinityModel.objects.filter(is_active=True)) == [first]
    rejected = AuditEntry.objects.get(action="affinity.model_rejected")
    assert rejected.data["reason"] == worse.reason
    assert rejected.data["active"] == first.model_version


def test_a_rejected_model_activated_by_an_admin_is_audited_and_a_better_one_replaces_it(
    learnable, admin_user, engine
):
    # Given a model the gate rejected (nothing in use yet)
    weak = training_runs.affinity_model_train(actor=None, params=CRIPPLED)
    assert weak.status == ModelStatus.REJECTED and not AffinityModel.objects.filter(is_active=True)
    url = f"/api/v1/affinity/models/{weak.pk}/activate"
    # When the engine tries to activate it: only an admin may
    assert api_client(engine).post(url, {"reason": "x"}, format="json").status_code == 403
    # When an admin tries without a reason: refused, naming the field
    response = api_client(admin_user).post(url, {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    assert not AffinityModel.objects.filter(is_active=True).exists()
    # When an admin gives a reason
    reason = "Campaign launch needs any personalised ranking; reviewed the figures."
    response = api_client(admin_user).post(url, {"reason": reason}, format="json")
    # Then it is in use, marked forced, and the override is audited with who and why
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "forced" and body["is_active"] is True
    assert body["override_reason"] == reason and body["reason"] == weak.reason
    forced = AuditEntry.objects.get(action="affinity.model_force_activated")
    assert forced.actor_id == admin_user.pk
    assert forced.data == {
        "model_version": weak.model_version,
        "reason": reason,
        "gate_reason": weak.reason,
    }
    listed = api_client(engine).get("/api/v1/affinity/model").json()
    assert listed["model_version"] == weak.model_version and listed["status"] == "forced"

    # When a model that beats popularity and the forced one is trained
    better = training_runs.affinity_model_train(actor=None)
    # Then it replaces it
    assert better.status == ModelStatus.PASSED and better.is_active
    assert better.reason == (
        "beats popularity within specialty x segment and is not worse than the active "
        f"model {weak.model_version}"
    )
    _beats(better.metrics["gate"]["champion"])  # here it is better, not only not worse
    body = api_client(engine).get("/api/v1/affinity/model").json()
    assert body["model_version"] == better.model_version
    assert [(m["model_version"], m["status"], m["is_active"]) for m in body["history"]] == [
        (better.model_version, "passed", True),
        (weak.model_version, "forced", False),
    ]
    # And a rejected model's history entry keeps its reason and figures
    assert body["history"][1]["reason"] == weak.reason
    assert "gate" in body["history"][1]["metrics"]


def test_the_gate_and_the_evaluation_share_one_fit_before_the_holdout(learnable):
    # Given learnable engagement, when a model is trained with its evaluation
    said: list[str] = []
    model = training_runs.affinity_model_train(actor=None, evaluate=True, progress=said.append)
    # Then the recipe is fitted on the events before the holdout once, for the gate,
    # and the evaluation scores that same fit (one fit fewer per training run)
    assert [m for m in said if "before the holdout" in m] == [
        "gate: fitting the challenger on the events before the holdout"
    ]
    # And the two report the same holdout and the same NDCG@5 for it
    gate, evaluation = model.metrics["gate"], model.metrics["evaluation"]
    assert gate["cutoff"] == evaluation["cutoff"]
    assert gate["n_test_exposures"] == evaluation["n_test_exposures"] > 0
    assert gate["challenger"]["ndcg@5"] == pytest.approx(
        evaluation["methods"]["model"]["ndcg@5"], abs=1e-12
    )
    # And the evaluation still has its ablation and its baselines beside it
    assert {"model_without_text", "group_popularity", "tag_regression"} <= set(
        evaluation["methods"]
    )


def test_scheduled_training_goes_through_the_gate(noise):
    # Given the beat schedule's training entry (AFFINITY_TRAIN_SCHEDULE)
    entry = settings.CELERY_BEAT_SCHEDULE["affinity-train-scheduled"]
    assert entry["schedule"] == settings.AFFINITY_TRAIN_SCHEDULE > 0
    # When beat fires it on engagement with nothing to learn (every click a coin flip)
    version = celery_app.tasks[entry["task"]].apply().get()
    # Then the model is stored as rejected with its reason, and nothing is in use
    model = AffinityModel.objects.get(model_version=version)
    assert model.status == ModelStatus.REJECTED and not model.is_active
    assert model.reason.startswith("does not beat popularity within specialty x segment")
    assert not AffinityModel.objects.filter(is_active=True).exists()
    # And the scheduled run was a training request like any other, answered by that model
    request = TrainingRequest.objects.get()
    assert request.requested_by is None and request.finished_at is not None
    assert request.model_version == version and request.outcome.startswith("rejected: ")
    # And the API says why no model is in use, and lists the rejected one
    engine = make_user("engine")
    response = api_client(engine).get("/api/v1/affinity/model")
    assert response.status_code == 409
    assert f"the gate rejected {version}" in response.json()["errors"]["model"][0]
    models = api_client(engine).get("/api/v1/affinity/models").json()["models"]
    assert [(m["model_version"], m["status"], m["reason"]) for m in models] == [
        (version, "rejected", model.reason)
    ]


def test_activating_a_passed_model_needs_no_reason_but_only_an_admin_may(db, admin_user, author):
    model = AffinityModel.objects.create(
        model_version="2026-01-01T00:00:00Z#1",
        trained_at="2026-01-01T00:00:00Z",
        artifact=b"",
        status=ModelStatus.PASSED,
        reason="beats popularity within specialty x segment",
    )
    url = f"/api/v1/affinity/models/{model.pk}/activate"
    assert api_client(author).post(url, {}, format="json").status_code == 403
    response = api_client(admin_user).post(url, {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "passed"
    assert AffinityModel.objects.get(is_active=True) == model
    missing = "/api/v1/affinity/models/00000000-0000-0000-0000-000000000000/activate"
    assert api_client(admin_user).post(missing, {}, format="json").status_code == 404
