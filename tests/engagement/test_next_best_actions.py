"""POST /api/v1/next-best-actions: channel, send time and module; holds; bad input; the log."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from content_modules.affinity.models import HCP
from content_modules.delivery.models import Recommendation
from tests.delivery.helpers import approved, event
from tests.factories import api_client

from . import world

pytestmark = pytest.mark.django_db
ALL = ["email", "rep_email", "web"]


def ask(client, **body):
    body.setdefault("hcp", "HCP-1")
    body.setdefault("channels", ALL)
    return client.post("/api/v1/next-best-actions", body, format="json")


@pytest.fixture
def client(engine):
    return api_client(engine)


@pytest.fixture
def hcp(db):
    return HCP.objects.create(
        external_id="HCP-1", specialty="cardiology", segment="digital", timezone="Europe/London"
    )


def test_actions_name_channel_time_and_module_within_the_horizon(author, engine, client):
    # Given a fitted world where early HCPs open at 08:00 Tokyo time and click rep emails
    _, early, _ = world.build(author)
    world.train()
    before = datetime.now(UTC)

    response = ask(client, hcp=early[0].external_id, horizon_hours=72, k=3)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["hold"] is False and body["hold_reason"] is None
    assert [a["rank"] for a in body["actions"]] == [1, 2, 3]
    assert len({a["module"] for a in body["actions"]}) == 3
    first = body["actions"][0]
    assert first["channel"] == "rep_email"
    send_at = datetime.fromisoformat(first["send_at"].replace("Z", "+00:00"))
    assert before <= send_at <= before + timedelta(hours=72)
    assert send_at.minute == 0
    assert send_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).hour in (7, 8, 9)
    assert 0 < first["score"] < 1
    assert first["propensity"] == 1.0 and first["explored"] is False
    assert any("morning" in d for d in first["drivers"])
    assert body["engagement_model_version"]


def test_only_versions_approved_for_the_channel_are_proposed(author, client, hcp):
    web_only = approved(author, channels=("web",))
    email = approved(author, channels=("email",))
    body = ask(client, channels=["email"], k=5).json()
    assert [a["module"] for a in body["actions"]] == [email.module_id]
    assert all(a["channel"] == "email" for a in body["actions"])
    body = ask(client, channels=["web"], k=5).json()
    assert [a["module"] for a in body["actions"]] == [web_only.module_id]


def test_saturated_hcp_is_told_to_hold(author, client, hcp):
    version = approved(author)
    now = datetime.now(UTC)
    for days in (1, 2, 3):
        event(hcp, version, "delivered", when=now - timedelta(days=days))
    body = ask(client).json()
    assert body["hold"] is True
    assert body["actions"] == []
    assert "Saturated" in body["hold_reason"]
    assert body["frequency"]["state"] == "saturated"
    logged = Recommendation.objects.get(pk=body["recommendation_id"])
    assert logged.kind == "next_best_action" and logged.reason.startswith("Saturated")


def test_on_target_hcp_waits_until_the_week_frees_up(author, client, hcp):
    # One touch a week recommended (no model yet); one sent two days ago
    version = approved(author)
    sent = datetime.now(UTC) - timedelta(days=2)
    event(hcp, version, "delivered", when=sent)
    body = ask(client, horizon_hours=24 * 7).json()
    assert body["frequency"]["state"] == "on_target"
    assert body["hold"] is False
    send_at = datetime.fromisoformat(body["actions"][0]["send_at"].replace("Z", "+00:00"))
    assert send_at >= sent + timedelta(days=7)
    # Within a day nothing may be sent: hold, saying when the next touch is due
    body = ask(client, horizon_hours=24).json()
    assert body["hold"] is True and "after the horizon" in body["hold_reason"]


def test_unsubscribes_are_honoured_per_channel(author, client, hcp):
    version = approved(author, channels=("email", "web"))
    event(hcp, version, "unsubscribed", channel="email")
    body = ask(client, channels=["email", "web"]).json()
    assert body["hold"] is False
    assert {a["channel"] for a in body["actions"]} == {"web"}
    body = ask(client, channels=["email"]).json()
    assert body["hold"] is True
    assert body["hold_reason"] == "The HCP unsubscribed from every requested channel."


def test_exploring_logs_propensities_over_channel_time_and_module(author, client, hcp):
    for _ in range(4):
        approved(author, channels=ALL)
    seen_below_one = False
    for _ in range(15):
        body = ask(client, explore=True, k=2, horizon_hours=48).json()
        assert body["policy"].startswith("epsilon-greedy")
        for action in body["actions"]:
            assert 0 < action["propensity"] <= 1
            seen_below_one |= action["propensity"] < 1
    assert seen_below_one
    logged = Recommendation.objects.get(pk=body["recommendation_id"])
    items = list(logged.items.order_by("rank"))
    assert [i.propensity for i in items] == pytest.approx(
        [a["propensity"] for a in body["actions"]], abs=1e-6
    )
    assert [i.channel for i in items] == [a["channel"] for a in body["actions"]]


def test_events_carrying_the_id_join_the_logged_actions(author, engine, client, hcp):
    version = approved(author, channels=ALL)
    body = ask(client, k=1).json()
    rec_id = body["recommendation_id"]
    event(hcp, version, "opened", channel=body["actions"][0]["channel"], rec=rec_id)
    logged = client.get(f"/api/v1/recommendations/{rec_id}").json()
    assert logged["kind"] == "next_best_action"
    item = logged["items"][0]
    assert item["channel"] == body["actions"][0]["channel"]
    assert item["send_at"] == body["actions"][0]["send_at"]
    assert [e["type"] for e in item["events"]] == ["opened"]
    assert logged["request"]["channels"] == ALL


def test_an_unknown_hcp_answers_from_its_group_flagged(author, client):
    approved(author, channels=ALL)
    body = ask(
        client, hcp="never-seen", context={"specialty": "cardiology", "segment": "digital"}
    ).json()
    assert body["cold_start"] is True
    assert body["hold"] is False and len(body["actions"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"horizon_hours": 0}, "horizon_hours"),
        ({"horizon_hours": 30 * 24 + 1}, "horizon_hours"),
        ({"k": 0}, "k"),
        ({"brand": "nope"}, "brand"),
        ({"hcp": "bad id!"}, "hcp"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(author, client, hcp, body, field):
    approved(author)
    response = ask(client, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Recommendation.objects.exists()


def test_a_retry_with_the_same_key_replays_the_answer(author, client, hcp):
    approved(author, channels=ALL)
    first = client.post(
        "/api/v1/next-best-actions",
        {"hcp": "HCP-1", "channels": ALL},
        format="json",
        headers={"Idempotency-Key": "nba-1"},
    )
    again = client.post(
        "/api/v1/next-best-actions",
        {"hcp": "HCP-1", "channels": ALL},
        format="json",
        headers={"Idempotency-Key": "nba-1"},
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert Recommendation.objects.count() == 1


def test_only_the_engine_or_an_admin_may_ask(author, hcp):
    from tests.factories import make_user

    response = ask(api_client(make_user("author")))
    assert response.status_code == 403
