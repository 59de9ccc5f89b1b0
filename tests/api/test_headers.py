"""Headers (issue 13, point 5): X-Request-Id always, Location on 201, RateLimit-* on 429."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from content_modules.review.services import version_submit
from tests.factories import api_client, make_module

pytestmark = pytest.mark.django_db


def test_every_answer_carries_a_fresh_request_id(author):
    client = api_client(author)
    answers = [
        client.get("/api/v1/modules"),
        client.get("/api/v1/no-such-route"),
        api_client(None).get("/api/v1/modules"),
        client.get("/library/"),
    ]
    ids = [answer["X-Request-Id"] for answer in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_plain_request_id_is_echoed(engine):
    response = api_client(engine).post(
        "/api/v1/recommendations",
        {"hcp": "HCP-1"},
        format="json",
        HTTP_X_REQUEST_ID="engine-7f3a:batch.12_x",
    )
    assert response.status_code == 200
    assert response["X-Request-Id"] == "engine-7f3a:batch.12_x"


@pytest.mark.parametrize("sent", ["x" * 129, "two words", "a<script>", "ünïcode", "a/b", ""])
def test_an_unsafe_or_overlong_request_id_is_replaced(engine, sent):
    response = api_client(engine).get("/api/v1/ping", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-Id"] != sent
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-Id"])


def test_a_module_created_answers_201_with_its_location(author, vocabulary):
    response = api_client(author).post(
        "/api/v1/modules",
        {
            "title": "T",
            "headline": "H",
            "body": "B",
            "key_message": "K",
            "brand": "cardiozen",
            "market": "UK",
            "channels": ["email"],
            "tags": {
                "message": "efficacy",
                "theme": ["outcomes"],
                "tonality": "clinical",
                "format": "text",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    location = response["Location"]
    assert location.endswith(f"/api/v1/modules/{response.json()['id']}")
    assert api_client(author).get(location).status_code == 200


def test_an_hcp_created_answers_201_with_its_location_and_200_after(engine):
    client = api_client(engine)
    created = client.put("/api/v1/hcps/HCP-9", {"specialty": "cardiology"}, format="json")
    again = client.put("/api/v1/hcps/HCP-9", {"specialty": "cardiology"}, format="json")
    assert created.status_code == 201, created.content
    assert created["Location"].endswith("/api/v1/hcps/HCP-9")
    assert client.get(created["Location"]).json()["specialty"] == "cardiology"
    assert again.status_code == 200 and "Location" not in again


def test_other_201s_carry_a_location(admin_user, author):
    client = api_client(admin_user)
    term = client.post(
        "/api/v1/vocabularies/theme", {"slug": "new-t", "label": "New"}, format="json"
    )
    reference = client.post("/api/v1/references", {"citation": "Smith 2025."}, format="json")
    module = make_module(author).module
    version_submit(actor=author, module=module)
    note = api_client(author).post(
        f"/api/v1/modules/{module.pk}/annotations",
        {"version": 1, "field": "headline", "start": 0, "end": 3, "text": "Check it."},
        format="json",
    )
    token = client.post("/api/v1/auth/tokens", {"name": "ingest"}, format="json")
    for response in (term, reference, note, token):
        assert response.status_code == 201, response.content
        assert response["Location"].startswith("http://testserver/api/v1/")
        assert client.get(response["Location"]).status_code == 200


def test_past_the_rate_a_token_gets_429_with_retry_and_ratelimit_headers(engine, settings):
    settings.ENGINE_THROTTLE_RATE = "3/min"
    client = api_client(engine)

    answers = [client.get("/api/v1/ping") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    body = refused.json()
    assert body["code"] == "throttled" and set(body) == {"code", "detail", "errors"}
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused["RateLimit-Reset"]) <= 60
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-Request-Id"]


def test_the_throttle_counts_per_token(engine, settings):
    settings.ENGINE_THROTTLE_RATE = "2/min"
    first, second = api_client(engine), api_client(engine)
    assert [first.get("/api/v1/ping").status_code for _ in range(3)] == [200, 200, 429]
    # Another token of the same account has its own count.
    assert second.get("/api/v1/ping").status_code == 200


def test_people_in_the_browser_are_not_counted_by_the_token_throttle(author, settings):
    settings.ENGINE_THROTTLE_RATE = "1/min"
    client = api_client(None)
    client.force_login(author)
    assert [client.get("/api/v1/modules").status_code for _ in range(3)] == [200, 200, 200]


def test_the_sign_in_throttle_429_has_the_headers_too(author, settings):
    settings.LOGIN_THROTTLE_RATE = "1/min"
    client = api_client(None)
    body = {"username": author.username, "password": "wrong"}
    client.post("/api/v1/auth/token", body, format="json")
    refused = client.post("/api/v1/auth/token", body, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert refused["RateLimit-Limit"] == "1" and refused["RateLimit-Remaining"] == "0"
    assert int(refused["Retry-After"]) >= 1


def test_the_schema_declares_the_headers():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    created = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for code, response in operation["responses"].items():
                headers = response.get("headers", {})
                assert "X-Request-Id" in headers, (method, path, code)
                if code == "201":
                    assert "Location" in headers, (method, path)
                    created += 1
                if code == "429":
                    assert {
                        "Retry-After",
                        "RateLimit-Limit",
                        "RateLimit-Remaining",
                        "RateLimit-Reset",
                    } <= set(headers), (method, path)
    assert created >= 5
