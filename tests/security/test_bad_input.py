"""Input PostgreSQL cannot store is bad input (400), never a 500 (found by schemathesis)."""

from __future__ import annotations

import pytest

from content_modules.library.models import Module
from tests.factories import api_client

pytestmark = pytest.mark.django_db


def test_nul_character_in_a_module_body_is_400_and_writes_nothing(author, vocabulary):
    body = {
        "title": "Nul\x00title",
        "headline": "h",
        "body": "b",
        "key_message": "k",
        "brand": "cardiozen",
        "market": "UK",
        "channels": ["email"],
        "tags": {"message": "efficacy", "theme": [], "tonality": "clin\x00ical", "format": "text"},
    }
    response = api_client(author).post("/api/v1/modules", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    assert not Module.objects.exists()


@pytest.mark.parametrize("value", [{}, [], ["opened"], 3])
def test_an_event_type_that_is_not_a_string_is_rejected_not_a_500(engine, value):
    event = {
        "event_id": "e3e70682-c209-1cac-a29f-6fbed82c07cd",
        "hcp": "HCP-1",
        "module": 1,
        "type": value,
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    response = api_client(engine).post("/api/v1/events", {"events": [event]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 0 and "type" in body["rejected"][0]["errors"]
