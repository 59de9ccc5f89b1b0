"""A logged recommendation reads back as the schema types it."""

from __future__ import annotations

import pytest

from content_modules.affinity.models import HCP
from tests.factories import api_client

from .helpers import approved, event, recommend

pytestmark = pytest.mark.django_db


def test_an_event_without_channel_comes_back_with_channel_null(author, engine):
    # Given a recommendation and two events joined to it, one naming no channel
    version = approved(author)
    hcp = HCP.objects.create(external_id="HCP-1")
    client = api_client(engine)
    rec_id = recommend(client, channel="email").json()["recommendation_id"]
    event(hcp, version, "opened", channel="", rec=rec_id)
    event(hcp, version, "clicked", channel="email", rec=rec_id)

    # When the engine reads the logged recommendation back
    logged = client.get(f"/api/v1/recommendations/{rec_id}").json()

    # Then the missing channel is null (not ""), the named one is kept
    events = logged["items"][0]["events"]
    assert [(e["type"], e["channel"]) for e in events] == [("opened", None), ("clicked", "email")]
    # And the logged request is the typed object, defaults filled in
    assert logged["request"] == {
        "hcp": "HCP-1",
        "channel": "email",
        "k": 5,
        "brand": None,
        "market": None,
        "slots": None,
        "exclude": [],
        "explore": False,
        "context": {},
    }
