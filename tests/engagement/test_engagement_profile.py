"""GET /api/v1/hcps/{id}/engagement-profile: channel, send time, frequency, microsegment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from content_modules.affinity.models import HCP
from content_modules.engagement.models import EngagementModel, Microsegment
from tests.delivery.helpers import approved, event
from tests.factories import api_client, make_user

from . import world

pytestmark = pytest.mark.django_db


def profile(client, external_id):
    return client.get(f"/api/v1/hcps/{external_id}/engagement-profile")


def test_a_fitted_model_finds_each_hcps_local_best_hour_and_channel(author, engine):
    # Given early HCPs in Tokyo who open at 08:00 local and click rep emails, late ones
    # in London who open at 19:00 local and click on the web
    _, early, late = world.build(author)
    world.train()
    client = api_client(engine)

    for hcp, zone, hour, channel in (
        (early[0], "Asia/Tokyo", 8, "rep_email"),
        (late[0], "Europe/London", 19, "web"),
    ):
        body = profile(client, hcp.external_id).json()
        # Then the best slots are at their local hour, read in their own zone
        assert body["send_time"]["timezone"] == zone
        assert {slot["hour"] for slot in body["send_time"]["best"]} <= {hour - 1, hour, hour + 1}
        by_hour = body["send_time"]["by_hour"]
        assert len(by_hour) == 24 and max(range(24), key=by_hour.__getitem__) in (
            hour - 1,
            hour,
            hour + 1,
        )
        assert len(body["send_time"]["by_weekday"]) == 7
        assert len(body["send_time"]["best"]) == 3
        # and their clicking channel is their best one
        channels = body["channels"]
        assert max(channels, key=channels.get) == channel
        assert all(0 < p < 1 for p in channels.values())
        assert body["from_group"] is False
        assert body["model_version"] == EngagementModel.objects.get(is_active=True).model_version


def test_an_hcp_with_no_history_answers_from_its_group_flagged(author, engine):
    _, early, _ = world.build(author)
    world.train()
    newcomer = HCP.objects.create(
        external_id="new-1", specialty="cardiology", segment="digital", timezone="Asia/Tokyo"
    )
    body = profile(api_client(engine), newcomer.external_id).json()
    assert body["from_group"] is True
    assert body["n_deliveries"] == 0
    # The group's pattern: the early group's morning and its rep-email preference
    assert {slot["hour"] for slot in body["send_time"]["best"]} <= {7, 8, 9}
    assert max(body["channels"], key=body["channels"].get) == "rep_email"
    assert body["frequency"]["touches_last_7_days"] == 0
    assert body["frequency"]["state"] == "undersaturated"


def test_frequency_counts_recent_touches_and_says_saturated(author, engine):
    # No model trained: the cap is the settings' (one touch a week by default)
    hcp = HCP.objects.create(external_id="HCP-1", specialty="cardiology", segment="digital")
    version = approved(author)
    now = datetime.now(UTC)
    for days in (1, 2, 3, 10, 20, 40):
        event(hcp, version, "delivered", when=now - timedelta(days=days))
    body = profile(api_client(engine), "HCP-1").json()
    assert body["model_version"] is None
    assert body["frequency"] == {
        "touches_last_7_days": 3,
        "touches_last_28_days": 5,
        "state": "saturated",
        "recommended_per_week": 1.0,
    }


def test_each_hcp_gets_a_microsegment_with_a_label(author, engine, settings):
    settings.ENGAGEMENT_MICROSEGMENTS = 3
    _, early, late = world.build(author, n_per_group=30)
    model = world.train()
    segments = list(Microsegment.objects.filter(model=model))
    assert 2 <= len(segments) <= 3
    assert sum(s.size for s in segments) == HCP.objects.count()
    assert all(s.label and s.features for s in segments)
    body = profile(api_client(engine), early[0].external_id).json()
    stored = HCP.objects.get(pk=early[0].pk).microsegment
    assert body["microsegment"]["id"] == stored
    assert body["microsegment"]["label"] == next(s.label for s in segments if s.key == stored)
    # Early and late HCPs differ in channel and timing: they do not share a segment
    early_keys = set(
        HCP.objects.filter(external_id__startswith="early-").values_list("microsegment", flat=True)
    )
    late_keys = set(
        HCP.objects.filter(external_id__startswith="late-").values_list("microsegment", flat=True)
    )
    assert not early_keys & late_keys


def test_segment_ids_stay_put_when_the_model_is_refitted(author, settings):
    settings.ENGAGEMENT_MICROSEGMENTS = 2
    world.build(author, n_per_group=30)
    first = world.train()
    before = dict(HCP.objects.values_list("external_id", "microsegment"))
    second = world.train()
    after = dict(HCP.objects.values_list("external_id", "microsegment"))
    assert first.pk != second.pk and EngagementModel.objects.get(is_active=True) == second
    same = sum(before[k] == after[k] for k in before)
    assert same / len(before) >= 0.95
    labels_first = {s.key: s.label for s in first.segments.all()}
    labels_second = {s.key: s.label for s in second.segments.all()}
    assert set(labels_first) == set(labels_second)


def test_unknown_hcp_is_404_and_malformed_id_400(engine):
    client = api_client(engine)
    assert profile(client, "nobody").status_code == 404
    response = profile(client, "bad id!")
    assert response.status_code == 400
    assert "external_id" in response.json()["errors"]


def test_a_user_without_a_role_may_not_read_it(db):
    HCP.objects.create(external_id="HCP-1")
    response = profile(api_client(make_user()), "HCP-1")
    assert response.status_code == 403
