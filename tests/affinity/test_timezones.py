"""HCP time zones: an optional IANA `timezone`, the market's by default, DST-exact local slots."""

from datetime import UTC, datetime

import numpy as np
import pytest

from content_modules.affinity import localtime
from content_modules.affinity.models import HCP
from tests import factories


@pytest.fixture
def client(engine):
    return factories.api_client(engine)


def test_a_profile_keeps_its_timezone_and_answers_the_zone_it_is_read_in(client):
    stored = client.put(
        "/api/v1/hcps/HCP-tz", {"region": "UK-London", "timezone": "Asia/Tokyo"}, format="json"
    )
    fetched = client.get("/api/v1/hcps/HCP-tz").json()

    assert stored.status_code == 201
    assert (fetched["timezone"], fetched["effective_timezone"]) == ("Asia/Tokyo", "Asia/Tokyo")
    assert HCP.objects.get(external_id="HCP-tz").timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("region", "zone"),
    [("UK-London", "Europe/London"), ("US-Boston", "America/New_York"), ("", "UTC")],
)
def test_without_a_timezone_the_market_of_the_region_gives_the_zone(client, region, zone):
    body = client.put("/api/v1/hcps/HCP-m", {"region": region}, format="json").json()

    assert body["timezone"] == ""
    assert body["effective_timezone"] == zone


def test_the_market_zones_and_the_default_are_settings(client, settings):
    settings.MARKET_TIMEZONES = {"UK": "Europe/Dublin"}
    settings.DEFAULT_HCP_TIMEZONE = "Europe/Paris"

    uk = client.put("/api/v1/hcps/HCP-a", {"region": "UK-Leeds"}, format="json").json()
    other = client.put("/api/v1/hcps/HCP-b", {"region": "US-Boston"}, format="json").json()

    assert uk["effective_timezone"] == "Europe/Dublin"
    assert other["effective_timezone"] == "Europe/Paris"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "europe/london", "UTC+1", 3])
def test_an_unknown_timezone_is_400_naming_it_and_writes_nothing(client, zone):
    response = client.put("/api/v1/hcps/HCP-bad", {"timezone": zone}, format="json")

    assert response.status_code == 400
    assert "timezone" in response.json()["errors"]
    assert not HCP.objects.filter(external_id="HCP-bad").exists()


def test_bulk_rejects_an_unknown_timezone_by_index_and_keeps_the_others(client):
    response = client.post(
        "/api/v1/hcps/bulk",
        {
            "hcps": [
                {"external_id": "HCP-1", "timezone": "America/Chicago"},
                {"external_id": "HCP-2", "timezone": "Nowhere/Town"},
            ]
        },
        format="json",
    )

    body = response.json()
    assert (body["created"], body["updated"]) == (1, 0)
    assert body["rejected"][0]["index"] == 1
    assert "timezone" in body["rejected"][0]["errors"]
    assert list(HCP.objects.values_list("external_id", "timezone")) == [
        ("HCP-1", "America/Chicago")
    ]


def _epoch(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def test_local_slots_follow_the_zone_across_a_dst_change():
    # Europe/London moves to BST at 01:00 UTC on Sunday 29 March 2026.
    instants = np.array(
        [
            _epoch(2026, 3, 28, 8, 30),  # Saturday, GMT: 08 local
            _epoch(2026, 3, 29, 0, 59),  # Sunday, still GMT: 00 local
            _epoch(2026, 3, 29, 1, 0),  # Sunday, BST from now: 02 local
            _epoch(2026, 3, 30, 8, 30),  # Monday, BST: 09 local
        ]
    )

    weekday, hour = localtime.local_slots(instants, "Europe/London")

    assert weekday.tolist() == [5, 6, 6, 0]
    assert hour.tolist() == [8, 0, 2, 9]


@pytest.mark.parametrize("size", [500, 40])  # a long history, and one HCP's short one
def test_local_slots_cross_the_date_line_and_agree_with_datetime(size):
    rng = np.random.default_rng(7)
    instants = rng.integers(_epoch(2025, 1, 1), _epoch(2027, 1, 1), size=size)
    for zone in ("America/Los_Angeles", "Asia/Kolkata", "Australia/Sydney", "UTC"):
        weekday, hour = localtime.local_slots(instants, zone)
        expected = [
            localtime.local_datetime(datetime.fromtimestamp(int(t), UTC), zone) for t in instants
        ]
        assert weekday.tolist() == [d.weekday() for d in expected]
        assert hour.tolist() == [d.hour for d in expected]


def test_the_hours_ahead_of_an_action_are_read_in_local_time_across_a_dst_change():
    start = _epoch(2026, 3, 25, 0, 0)  # the week around London's change to BST
    hours = 24 * 8

    weekday, hour = localtime.hourly_slots(start, hours, "Europe/London")
    again = localtime.hourly_slots(start, hours, "Europe/London")  # from the cache

    instants = start + 3600 * np.arange(hours)
    expected = [
        localtime.local_datetime(datetime.fromtimestamp(int(t), UTC), "Europe/London")
        for t in instants
    ]
    assert weekday.tolist() == [d.weekday() for d in expected]
    assert hour.tolist() == [d.hour for d in expected]
    assert hour.tolist().count(1) == 7  # 01:00 local never happens on 29 March
    assert again[1].tolist() == hour.tolist() and not again[1].flags.writeable


def test_the_hcp_page_names_the_local_time_zone(db, client, admin_client):
    client.put("/api/v1/hcps/HCP-page", {"region": "US-Ohio"}, format="json")

    page = admin_client.get("/affinity/hcps/HCP-page/")

    assert page.status_code == 200
    assert "local time America/New_York (the market's)" in page.content.decode()
