"""POST/GET /api/v1/experiments, stop, archive: bad input, overlap, permissions."""

from __future__ import annotations

import pytest

from content_modules.experiments.models import Experiment, ExperimentGeneration, Status
from tests.delivery.helpers import approved
from tests.factories import api_client, ensure_vocabulary, make_user

from .helpers import start

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user):
    ensure_vocabulary()
    return api_client(admin_user)


def post(client, **body):
    body.setdefault("name", "test")
    body.setdefault("arms", [{"name": "A", "policy": "model"}, {"name": "B", "policy": "random"}])
    return client.post("/api/v1/experiments", body, format="json")


def error_fields(response) -> set[str]:
    assert response.status_code == 400, response.content
    return set(response.json()["errors"])


def test_admin_starts_an_experiment_and_reads_it_back(admin):
    # When an admin starts a two-arm experiment with a holdout on CardioZen email
    body = start(admin, holdout=0.1, brand="cardiozen", channel="email", min_detectable_lift=0.01)

    # Then it runs, and the list and the detail answer it
    assert body["status"] == "running" and body["stopped_at"] is None
    assert [a["name"] for a in body["arms"]] == ["A", "B"]
    assert body["holdout"] == 0.1 and body["brand"] == "cardiozen" and body["market"] is None
    listed = admin.get("/api/v1/experiments").json()
    assert [e["id"] for e in listed] == [body["id"]]
    detail = admin.get(f"/api/v1/experiments/{body['id']}").json()
    assert [a["name"] for a in detail["arms"]] == ["A", "B"]
    assert detail["arms"][0]["deliveries"] == 0 and detail["arms"][0]["rate_ci95"] is None
    assert detail["holdout_results"]["name"] == "holdout"
    assert detail["verdict"] == "arm B: no deliveries yet"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"arms": [{"name": "A", "policy": "model"}]}, "arms"),
        ({"arms": []}, "arms"),
        (
            {"arms": [{"name": "A", "policy": "model"}, {"name": "B", "policy": "bandit"}]},
            "arms.1.policy",
        ),
        ({"holdout": 0.6}, "holdout"),
        ({"holdout": -0.1}, "holdout"),
        ({"holdout": "lots"}, "holdout"),
        ({"metric": "revenue"}, "metric"),
        ({"brand": "nosuchbrand"}, "brand"),
        ({"channel": "fax"}, "channel"),
        (
            {"arms": [{"name": "A", "policy": "model"}, {"name": "A", "policy": "random"}]},
            "arms.1.name",
        ),
        (
            {"arms": [{"name": "holdout", "policy": "model"}, {"name": "B", "policy": "random"}]},
            "arms.0.name",
        ),
        (
            {"arms": [{"name": "A", "policy": "model"}, {"name": "B", "policy": "fixed"}]},
            "arms.1.modules",
        ),
        (
            {
                "arms": [
                    {"name": "A", "policy": "model", "modules": [1]},
                    {"name": "B", "policy": "random"},
                ]
            },
            "arms.0.modules",
        ),
        ({"min_detectable_lift": 2}, "min_detectable_lift"),
    ],
)
def test_bad_input_is_400_naming_the_field(admin, body, field):
    assert field in error_fields(post(admin, **body))
    assert not Experiment.objects.exists()


def test_an_unknown_module_in_a_fixed_arm_is_400_naming_the_field(admin, author):
    known = approved(author)
    arms = [
        {"name": "A", "policy": "model"},
        {"name": "B", "policy": "fixed", "modules": [known.module_id, 987_654]},
    ]
    response = post(admin, arms=arms)
    assert error_fields(response) == {"arms.1.modules"}
    assert "987654" in response.json()["errors"]["arms.1.modules"][0]


@pytest.mark.parametrize(
    ("first", "second", "overlaps"),
    [
        ({}, {}, True),  # both on all traffic
        ({"brand": "cardiozen"}, {}, True),  # null matches anything
        ({"brand": "cardiozen"}, {"channel": "email"}, True),
        (
            {"brand": "cardiozen", "channel": "email"},
            {"brand": "cardiozen", "channel": "web"},
            False,
        ),
        ({"market": "UK"}, {"market": "DE"}, False),
    ],
)
def test_two_running_experiments_never_share_traffic(admin, first, second, overlaps):
    ensure_vocabulary()
    from content_modules.library.models import Market

    Market.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    one = start(admin, name="one", **first)
    response = post(admin, name="two", **second)
    if overlaps:
        assert error_fields(response) == {"traffic"}
        assert f"Running experiment {one['id']}" in response.json()["errors"]["traffic"][0]
    else:
        assert response.status_code == 201, response.content


def test_stop_then_archive_and_the_traffic_is_free_again(admin):
    one = start(admin, name="one")
    generation = ExperimentGeneration.objects.get(pk=1).value

    stopped = admin.post(f"/api/v1/experiments/{one['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert stopped.json()["stopped_at"] is not None
    assert ExperimentGeneration.objects.get(pk=1).value != generation  # every process reloads
    assert admin.post(f"/api/v1/experiments/{one['id']}/stop").status_code == 409
    assert post(admin, name="two").status_code == 201  # the traffic is free again

    archived = admin.post(f"/api/v1/experiments/{one['id']}/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert [e["name"] for e in admin.get("/api/v1/experiments").json()] == ["two"]
    listed = admin.get("/api/v1/experiments?status=archived").json()
    assert [e["name"] for e in listed] == ["one"]
    assert {e["name"] for e in admin.get("/api/v1/experiments?status=all").json()} == {
        "one",
        "two",
    }
    assert admin.get(f"/api/v1/experiments/{one['id']}").status_code == 200  # still readable
    assert Experiment.objects.get(pk=one["id"]).status == Status.ARCHIVED


def test_only_a_stopped_experiment_can_be_archived(admin):
    one = start(admin)
    response = admin.post(f"/api/v1/experiments/{one['id']}/archive")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert admin.post("/api/v1/experiments/999999/stop").status_code == 404


def test_unknown_status_filter_is_400(admin):
    assert error_fields(admin.get("/api/v1/experiments?status=paused")) == {"status"}


def test_engine_reads_but_never_starts_or_stops(admin, engine):
    one = start(admin)
    client = api_client(engine)
    assert client.get("/api/v1/experiments").status_code == 200
    assert client.get(f"/api/v1/experiments/{one['id']}").status_code == 200
    assert post(client).status_code == 403
    assert client.post(f"/api/v1/experiments/{one['id']}/stop").status_code == 403
    author = api_client(make_user("author"))
    assert author.get("/api/v1/experiments").status_code == 403


def test_starting_stopping_and_archiving_are_in_the_audit_trail(admin, admin_user):
    from content_modules.audit.models import AuditEntry
    from content_modules.audit.services import audit_verify

    exp = start(admin, name="Audited", holdout=0.1, channel="email")
    admin.post(f"/api/v1/experiments/{exp['id']}/stop")
    admin.post(f"/api/v1/experiments/{exp['id']}/archive")
    entries = list(AuditEntry.objects.filter(action__startswith="experiment.").order_by("seq"))
    assert [e.action for e in entries] == [
        "experiment.started",
        "experiment.stopped",
        "experiment.archived",
    ]
    assert all(e.actor_id == admin_user.pk for e in entries)
    assert entries[0].data == {
        "name": "Audited",
        "arms": ["A: model", "B: random"],
        "holdout": 0.1,
        "traffic": "channel email",
    }
    assert audit_verify().ok
