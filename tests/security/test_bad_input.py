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
