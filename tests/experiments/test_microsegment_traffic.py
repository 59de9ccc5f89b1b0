"""Experiments on one engagement microsegment: only its HCPs follow the arms."""

from __future__ import annotations

import pytest
from django.utils import timezone

from content_modules.affinity.models import HCP
from content_modules.engagement import learning, serving
from content_modules.engagement.models import EngagementModel, Microsegment
from tests.delivery.helpers import approved, recommend
from tests.factories import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def segments(db):
    model = EngagementModel.objects.create(
        model_version="test#e1",
        trained_at=timezone.now(),
        artifact=learning.default_params(["email", "web"]).to_bytes(),
        is_active=True,
    )
    for key in ("ms-1", "ms-2"):
        Microsegment.objects.create(model=model, key=key, label=f"segment {key}", size=1)
    serving.reset_cache()
    yield
    serving.reset_cache()


def create(client, **body):
    body.setdefault("name", "segment test")
    body.setdefault("arms", [{"name": "A", "policy": "model"}, {"name": "B", "policy": "random"}])
    return client.post("/api/v1/experiments", body, format="json")


def test_only_the_segments_hcps_follow_the_experiment(admin_user, engine, author, segments):
    approved(author)
    admin = api_client(admin_user)
    exp = create(admin, microsegment="ms-1")
    assert exp.status_code == 201, exp.content
    assert exp.json()["microsegment"] == "ms-1"
    HCP.objects.create(external_id="in-1", microsegment="ms-1")
    HCP.objects.create(external_id="out-1", microsegment="ms-2")
    engine_client = api_client(engine)
    inside = recommend(engine_client, hcp="in-1").json()
    outside = recommend(engine_client, hcp="out-1").json()
    assert inside["experiment"]["id"] == exp.json()["id"]
    assert outside["experiment"] is None
    actions = engine_client.post(
        "/api/v1/next-best-actions", {"hcp": "in-1", "channels": ["email"]}, format="json"
    ).json()
    assert actions["experiment"]["id"] == exp.json()["id"]


def test_segments_split_traffic_and_an_unknown_one_is_400(admin_user, segments):
    admin = api_client(admin_user)
    assert create(admin, name="one", microsegment="ms-1").status_code == 201
    assert create(admin, name="two", microsegment="ms-2").status_code == 201  # disjoint
    everyone = create(admin, name="all")  # overlaps both
    assert everyone.status_code == 400 and "traffic" in everyone.json()["errors"]
    unknown = create(admin, name="x", microsegment="ms-9")
    assert unknown.status_code == 400 and "microsegment" in unknown.json()["errors"]
