"""Accepted times are bounded, and pages survive any time already stored (issue 11, point 3).

An engine event dated ``0001-01-01T00:30:00+01:00`` was accepted and stored as
a BC instant on PostgreSQL, after which the HCP page and the admin event list
answered 500. Ingestion now refuses times before INPUT_EARLIEST_DATE (and
beyond the future tolerance), and a row put in the database directly, with
any time the column can hold, still renders.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.library.models import ModuleVersion
from tests.factories import api_client, make_module

pytestmark = pytest.mark.django_db


def _event(version, occurred_at: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "hcp": "HCP-T1",
        "module": version.module_id,
        "type": "opened",
        "occurred_at": occurred_at,
        "channel": "email",
    }


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:30:00+01:00",  # a BC instant once in UTC
        "1999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_an_event_time_out_of_bounds_is_rejected_naming_occurred_at(
    engine, author, vocabulary, occurred_at
):
    module = make_module(author)
    response = api_client(engine).post(
        "/api/v1/events", {"events": [_event(module, occurred_at)]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 0
    assert list(body["rejected"][0]["errors"]) == ["occurred_at"]
    assert not EngagementEvent.objects.exists()


def test_an_event_at_the_earliest_accepted_day_is_kept(engine, author, vocabulary):
    module = make_module(author)
    response = api_client(engine).post(
        "/api/v1/events",
        {"events": [_event(module, "2000-01-01T00:00:00Z")]},
        format="json",
    )
    assert response.json()["accepted"] == 1, response.content


@pytest.mark.parametrize("expires_on", ["9999-12-31", "2999-01-01"])
def test_an_expiry_date_far_ahead_is_rejected_naming_expires_on(author, vocabulary, expires_on):
    body = {
        "title": "t",
        "headline": "h",
        "body": "b",
        "key_message": "k",
        "brand": "cardiozen",
        "market": "UK",
        "channels": ["email"],
        "tags": {
            "message": "efficacy",
            "theme": ["outcomes"],
            "tonality": "clinical",
            "format": "text",
        },
        "expires_on": expires_on,
    }
    response = api_client(author).post("/api/v1/modules", body, format="json")
    assert response.status_code == 400, response.content
    assert "expires_on" in response.json()["errors"]
    assert not ModuleVersion.objects.exists()


def _extreme_times() -> list[str]:
    """Times the database column can hold, whatever Python can represent."""
    if connection.vendor == "postgresql":
        return [
            "0001-12-31 23:30:00+00 BC",
            "4713-01-01 00:00:00+00 BC",
            "-infinity",
            "infinity",
            "294276-12-31 23:59:59+00",
        ]
    return ["0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"]


def _store_raw_event(version, hcp: HCP, when: str) -> None:
    table = connection.ops.quote_name(EngagementEvent._meta.db_table)
    event_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (event_id, hcp_id, module_id, version_id, type, occurred_at,"
            " channel, recommendation_id, dwell_seconds, received_at)"
            " VALUES (%s, %s, %s, NULL, 'opened', %s, 'email', NULL, NULL, %s)",
            [
                event_id if connection.vendor == "postgresql" else event_id.hex,
                hcp.pk,
                version.module_id,
                when,
                timezone.now() if connection.vendor == "postgresql" else "2026-01-01 00:00:00",
            ],
        )


def test_pages_render_events_stored_with_any_time(admin_user, author, vocabulary, client):
    # Given: events put straight into the database with the extreme times it can hold
    version = make_module(author)
    hcp = HCP.objects.create(external_id="HCP-T2")
    for when in _extreme_times():
        _store_raw_event(version, hcp, when)
    client.force_login(admin_user)

    # When / then: the HCP page, the HCP list and the admin event list still answer
    for url in (
        "/affinity/hcps/HCP-T2/",
        "/affinity/hcps/",
        "/admin/affinity/engagementevent/",
        "/admin/affinity/engagementevent/?o=1",
        "/admin/affinity/hcp/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    detail = client.get("/affinity/hcps/HCP-T2/").content.decode()
    assert "opened" in detail


def test_pages_render_a_version_stored_with_any_expiry_date(admin_user, author, vocabulary, client):
    version = make_module(author)
    if connection.vendor == "postgresql":
        values = ["infinity", "0044-03-15 BC"]
    else:
        values = ["9999-12-31", "0001-01-01"]
    table = connection.ops.quote_name(ModuleVersion._meta.db_table)
    client.force_login(admin_user)
    for value in values:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET expires_on = %s WHERE id = %s", [value, version.pk])
        for url in (
            "/library/",
            f"/library/modules/{version.module_id}/",
            "/admin/library/moduleversion/",
            "/admin/library/module/",
        ):
            response = client.get(url)
            assert response.status_code in (200, 302), (value, url, response.status_code)
