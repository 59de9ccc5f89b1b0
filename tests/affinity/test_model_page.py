"""The model page: the gate's verdict per model; "train now" and "activate anyway" for admins."""

from __future__ import annotations

import pytest

from content_modules.affinity.learning import scoring
from content_modules.affinity.models import AffinityModel, ModelStatus, TrainingRequest
from content_modules.audit.models import AuditEntry
from tests.affinity.test_pages import assert_csp_safe, login
from tests.celery_support import broker_down

from .worlds import build_noise_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def noise(db, author, embedding_model):
    scoring.reset_cache()
    yield build_noise_world(author, n_hcps=80)
    scoring.reset_cache()


def test_admin_trains_from_the_page_and_sees_the_rejected_model_with_its_reason(
    client, noise, admin_user
):
    # Given an admin on the model page before any training
    login(client, admin_user)
    page = client.get("/affinity/model/").content.decode()
    assert "No affinity model has been trained yet" in page
    assert 'id="train-now-button"' in page and "POST /api/v1/affinity/train" not in page
    # When they press "Train now" (eager Celery here: the run happens at once)
    response = client.post("/affinity/model/train/", follow=True)
    # Then the request went through the outbox and the gate
    assert response.status_code == 200
    request = TrainingRequest.objects.get()
    assert request.requested_by == admin_user and request.finished_at is not None
    model = AffinityModel.objects.get()
    assert model.status == ModelStatus.REJECTED and not model.is_active
    page = response.content.decode()
    assert f"Training finished: {request.outcome}" in page.replace("&#x27;", "'")
    # And the page says no model is in use, why, and shows the verdict in the table
    assert f"the gate rejected {model.model_version}" in page
    assert 'data-status="rejected"' in page and "Rejected by the gate" in page
    assert "does not beat popularity within specialty x segment" in page
    assert "Activate anyway" in page
    assert_csp_safe(page)

    # When the admin activates it without a reason
    url = f"/affinity/model/{model.pk}/activate/"
    response = client.post(url, {"reason": "  "})
    # Then it is refused on the page, naming the reason, and nothing is in use
    assert response.status_code == 400
    assert "activating it needs a reason" in response.content.decode()
    assert not AffinityModel.objects.filter(is_active=True).exists()
    # When they give one
    response = client.post(url, {"reason": "Pilot: compare against the holdout arm."}, follow=True)
    # Then it is in use, marked as forced with who and why, and audited
    page = response.content.decode()
    model.refresh_from_db()
    assert model.is_active and model.status == ModelStatus.FORCED
    assert "Pilot: compare against the holdout arm." in page
    assert f"In use: {model.model_version}" in page
    entry = AuditEntry.objects.get(action="affinity.model_force_activated")
    assert entry.actor_id == admin_user.pk


def test_train_now_with_the_queue_down_says_it_runs_later(client, db, admin_user):
    login(client, admin_user)
    with broker_down():
        response = client.post("/affinity/model/train/", follow=True)
    assert response.status_code == 200
    assert "runs once it is back" in response.content.decode()
    request = TrainingRequest.objects.get()
    assert request.queued_at is None and request.finished_at is None


def test_only_admins_get_the_buttons(client, db, author, engine):
    AffinityModel.objects.create(
        model_version="2026-01-01T00:00:00Z#1",
        trained_at="2026-01-01T00:00:00Z",
        artifact=b"",
        status=ModelStatus.REJECTED,
        reason="does not beat popularity within specialty x segment: ndcg@5 ...",
    )
    login(client, author)
    page = client.get("/affinity/model/").content.decode()
    # Authors see the verdict, but neither button
    assert "does not beat popularity within specialty x segment" in page
    assert "train-now-button" not in page and "Activate anyway" not in page
    assert "An admin can start one from this page" not in page  # a model exists
    # And posting anyway is refused
    assert client.post("/affinity/model/train/").status_code == 403
    model = AffinityModel.objects.get()
    response = client.post(f"/affinity/model/{model.pk}/activate/", {"reason": "x"})
    assert response.status_code == 403
    assert not TrainingRequest.objects.exists()
    assert not AffinityModel.objects.filter(is_active=True).exists()
