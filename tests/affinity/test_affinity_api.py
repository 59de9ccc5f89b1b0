"""GET /hcps/{id}/affinity, POST /affinity/train and GET /affinity/model."""

from __future__ import annotations

import re

import pytest

from content_modules.affinity.learning import scoring
from content_modules.affinity.learning.features import Params
from content_modules.affinity.models import HCP, AffinityModel, TrainingRequest
from content_modules.affinity.tasks import train_affinity_task, train_pending_task
from content_modules.affinity.training_runs import pending_training_requests
from content_modules.audit.models import AuditEntry
from tests.affinity.test_learning import build_world, train_active
from tests.affinity.worlds import assert_answered_through_the_gate, build_learnable_world
from tests.celery_support import broker_down
from tests.factories import api_client, make_user

VERSION_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ#\d+$")


@pytest.fixture
def world(db, author, embedding_model):
    scoring.reset_cache()
    yield build_world(author, n_hcps=40, deliveries=14)
    scoring.reset_cache()


@pytest.fixture
def trained(world):
    return train_active()


def test_affinity_of_an_unknown_hcp_is_404(db, engine):
    response = api_client(engine).get("/api/v1/hcps/HCP-nobody/affinity")
    assert response.status_code == 404
    assert "external_id" in response.json()["errors"]


def test_affinity_with_a_malformed_external_id_is_400(db, engine):
    response = api_client(engine).get("/api/v1/hcps/bad%20id!/affinity")
    assert response.status_code == 400
    assert "external_id" in response.json()["errors"]


def test_affinity_before_any_training_is_409_and_says_so(db, engine):
    HCP.objects.create(external_id="HCP-1", specialty="cardiology")
    response = api_client(engine).get("/api/v1/hcps/HCP-1/affinity")
    assert response.status_code == 409
    assert "No affinity model has been trained yet" in response.json()["errors"]["model"][0]


def test_model_before_any_training_is_409(db, engine):
    response = api_client(engine).get("/api/v1/affinity/model")
    assert response.status_code == 409
    assert "model" in response.json()["errors"]


def test_affinity_needs_credentials_and_a_role(db):
    HCP.objects.create(external_id="HCP-1")
    assert api_client().get("/api/v1/hcps/HCP-1/affinity").status_code == 401
    nobody = make_user(None)
    assert api_client(nobody).get("/api/v1/hcps/HCP-1/affinity").status_code == 403


def test_affinity_answers_probabilities_per_feature_value(world, trained, engine):
    versions, hcps = world
    cardiologist = next(h for h in hcps if h.specialty == "cardiology")
    response = api_client(engine).get(f"/api/v1/hcps/{cardiologist.external_id}/affinity")
    assert response.status_code == 200
    body = response.json()
    assert body["hcp"] == cardiologist.external_id
    assert body["model_version"] == trained.model_version
    assert body["n_events"] == cardiologist.events.count()
    for kind in ("message", "theme", "tonality", "format", "channel"):
        assert body[kind], kind
        assert all(0.0 < p < 1.0 for p in body[kind].values())
    assert set(body["tonality"]) == {"clinical", "empathetic", "urgent"}
    # The planted preference shows: cardiologists engage with empathetic content.
    assert body["tonality"]["empathetic"] > body["tonality"]["clinical"]
    assert body["tonality"]["empathetic"] > body["tonality"]["urgent"]


def test_reviewers_may_read_affinities(world, trained, medical):
    _versions, hcps = world
    response = api_client(medical).get(f"/api/v1/hcps/{hcps[0].external_id}/affinity")
    assert response.status_code == 200


def test_an_author_may_not_start_training(db, author):
    response = api_client(author).post("/api/v1/affinity/train")
    assert response.status_code == 403
    assert AffinityModel.objects.count() == 0


def test_training_without_credentials_is_401(db):
    assert api_client().post("/api/v1/affinity/train").status_code == 401


def test_engine_starts_training_in_the_background(
    db, author, embedding_model, engine, django_capture_on_commit_callbacks
):
    # Given engagement a model can learn (it beats popularity, so the gate activates it)
    build_learnable_world(author)
    # When the engine asks for a training run
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(engine).post("/api/v1/affinity/train")
    # Then it is accepted with a task id and audited
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert AuditEntry.objects.filter(action="affinity.training_requested").exists()
    # And (Celery runs eagerly here) the task trained, stored, activated and evaluated a model
    model = AffinityModel.objects.get(is_active=True)
    assert VERSION_RE.match(model.model_version)
    assert task_id
    response = api_client(engine).get("/api/v1/affinity/model")
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == model.model_version
    assert body["n_events"] == model.n_events > 0
    assert body["n_hcps"] == HCP.objects.filter(events__isnull=False).distinct().count()
    assert body["trained_at"]
    assert body["status"] == "passed" and body["reason"].startswith("beats popularity")
    assert [m["model_version"] for m in body["history"]] == [model.model_version]
    assert body["embedding_model_sha256"] == model.embedding_model_sha256
    evaluation = body["metrics"]["evaluation"]
    assert set(evaluation["methods"]) == {
        "model",
        "random",
        "popularity",
        "group_popularity",
        "tag_regression",
        "text_regression",
        "model_without_text",
    }
    assert "auc" in evaluation["methods"]["model"]
    # Typed figures (the schema's ModelMetrics): identifiers, not "ndcg@5"
    assert 0 <= evaluation["methods"]["model"]["ndcg_at_5"] <= 1
    assert body["metrics"]["gate"]["popularity"]["ndcg_at_5"]["diff"] is not None
    assert body["metrics"]["train"]["n"] > 0
    assert body["params"] == {**Params().as_dict(), **model.params}


def test_admin_may_start_training(world, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(admin_user).post("/api/v1/affinity/train")
    assert response.status_code == 202
    assert_answered_through_the_gate(TrainingRequest.objects.get(pk=response.json()["task_id"]))


def test_openapi_schema_documents_the_affinity_endpoints(db, admin_user):
    response = api_client(admin_user).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/hcps/{external_id}/affinity" in paths
    assert "post" in paths["/api/v1/affinity/train"]
    assert "get" in paths["/api/v1/affinity/model"]


@pytest.mark.celery_worker
@pytest.mark.slow
def test_a_real_worker_trains_evaluates_and_activates_a_model(
    live_celery_worker, author, engine, embedding_model
):
    # Given events a model can learn (committed: the worker is another process)
    build_learnable_world(author)
    # When the engine asks for training
    response = api_client(engine).post("/api/v1/affinity/train")
    assert response.status_code == 202
    # Then the worker trains, gates, stores, activates and evaluates a model
    model = live_celery_worker.wait_for(
        lambda: AffinityModel.objects.filter(is_active=True, metrics__has_key="evaluation").first()
    )
    assert VERSION_RE.match(model.model_version)
    body = api_client(engine).get("/api/v1/affinity/model").json()
    assert body["model_version"] == model.model_version and body["status"] == "passed"
    assert body["metrics"]["evaluation"]["methods"]["model"]["auc"] > 0.5


def test_training_requested_with_the_task_queue_down_is_kept_and_run_by_the_sweeper(world, engine):
    # When the engine asks for a training run while the broker does not answer
    with broker_down():
        response = api_client(engine).post("/api/v1/affinity/train")
    # Then it is accepted, told it is not queued yet, and the request is kept
    assert response.status_code == 202
    body = response.json()
    assert body["queued"] is False
    kept = TrainingRequest.objects.get(pk=body["task_id"])
    assert kept.queued_at is None and kept.finished_at is None
    assert AuditEntry.objects.filter(action="affinity.training_deferred").count() == 1
    assert not AffinityModel.objects.exists()
    # When the broker is back and the sweeper fires (celery beat sends it every minute)
    version = train_pending_task.apply().get()
    # Then a model is trained and active, and the request is answered by it
    kept.refresh_from_db()
    assert kept.model_version == version
    assert_answered_through_the_gate(kept)
    # And a second sweep finds nothing left to do
    assert train_pending_task.apply().get() is None
    assert AffinityModel.objects.count() == 1


def test_a_queued_training_request_is_answered_and_its_redelivery_trains_nothing(world, engine):
    # Given a request the broker took (eager here: the run happens at once)
    body = api_client(engine).post("/api/v1/affinity/train").json()
    request = TrainingRequest.objects.get(pk=body["task_id"])
    assert body["queued"] is True and request.queued_at is not None
    assert_answered_through_the_gate(request)
    # When the same task is delivered again (a worker died before acknowledging it)
    again = train_affinity_task.apply(
        kwargs={"actor_id": engine.pk, "request_id": body["task_id"]}
    ).get()
    # Then it answers the run's version without training a second model
    assert again == request.model_version
    assert AffinityModel.objects.count() == 1
    assert not pending_training_requests().exists()


def test_a_request_with_nothing_to_train_on_is_answered_with_the_reason(db, engine):
    # Given no engagement events at all, and a request the broker never took
    with broker_down():
        response = api_client(engine).post("/api/v1/affinity/train")
    # When the sweeper runs it
    assert train_pending_task.apply().get() is None
    # Then the request is closed and says why no model came of it
    request = TrainingRequest.objects.get(pk=response.json()["task_id"])
    assert request.finished_at is not None
    assert request.outcome.startswith("not possible:") and "events" in request.outcome
    assert not pending_training_requests().exists()
