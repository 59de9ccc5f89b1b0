"""Bad JSON and unbounded input answer 4xx naming the field, never 500 (issue 11: 2, 4, 12).

Each case was a 500 (RecursionError, OverflowError, a refused insert) or an
unbounded row before the input bounds (content_modules/bounds.py).
"""

from __future__ import annotations

import json
import uuid

import pytest

from content_modules import bounds
from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.delivery.models import Recommendation
from content_modules.library.models import Module
from tests.factories import api_client, make_module

pytestmark = pytest.mark.django_db

DEEP = "[" * 1500 + "]" * 1500


def post_raw(client, url: str, text: str, method: str = "POST"):
    """Send JSON text as written (json.dumps cannot write lone surrogates or 1e400)."""
    return client.generic(method, url, text.encode("utf-8"), content_type="application/json")


def errors_of(response) -> dict:
    return response.json()["errors"]


def module_body(**overrides) -> dict:
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
    }
    body.update(overrides)
    return body


# --- point 2: nesting depth ---------------------------------------------------------------


def test_a_login_body_nested_1500_deep_is_400_naming_username_without_login(db):
    response = post_raw(
        api_client(), "/api/v1/auth/token", '{"username": ' + DEEP + ', "password": "x"}'
    )
    assert response.status_code == 400, response.content
    assert list(errors_of(response)) == ["username"]
    assert "32 levels" in errors_of(response)["username"][0]


@pytest.mark.parametrize(
    ("url", "method", "text", "field"),
    [
        ("/api/v1/recommendations", "POST", '{"hcp": "HCP-1", "context": {"a": %s}}', "context"),
        ("/api/v1/hcps/HCP-9", "PUT", '{"attributes": {"a": %s}}', "attributes"),
        (
            "/api/v1/hcps/bulk",
            "POST",
            '{"hcps": [{"external_id": "H", "attributes": %s}]}',
            "hcps.0.attributes",
        ),
        (
            "/api/v1/events",
            "POST",
            '{"events": [{"event_id": "x"}, {"type": %s}]}',
            "events.1.type",
        ),
        ("/api/v1/modules", "POST", '{"title": "t", "tags": {"theme": %s}}', "tags"),
    ],
)
def test_deep_nesting_anywhere_is_400_naming_the_field_and_writes_nothing(
    engine, admin_user, vocabulary, url, method, text, field
):
    response = post_raw(api_client(admin_user), url, text % DEEP, method)
    assert response.status_code == 400, response.content
    assert list(errors_of(response)) == [field]
    assert not (Recommendation.objects.exists() or HCP.objects.exists() or Module.objects.exists())


@pytest.mark.parametrize("field", ["tags", "channels"])
def test_deep_nesting_in_a_multipart_json_field_is_400_naming_it(author, vocabulary, field):
    body = {**module_body(), "tags": json.dumps(module_body()["tags"]), "channels": '["email"]'}
    body[field] = DEEP
    response = api_client(author).post("/api/v1/modules", body, format="multipart")
    assert response.status_code == 400, response.content
    assert "32 levels" in errors_of(response)[field][0]
    assert not Module.objects.exists()


def test_the_depth_limit_is_a_setting_and_counts_containers(engine, settings):
    settings.JSON_MAX_DEPTH = 4
    client = api_client(engine)
    ok = post_raw(client, "/api/v1/recommendations", '{"hcp": "H1", "context": {"a": [[1]]}}')
    deep = post_raw(client, "/api/v1/recommendations", '{"hcp": "H1", "context": {"a": [[[1]]]}}')
    assert ok.status_code == 200, ok.content
    assert deep.status_code == 400 and list(errors_of(deep)) == ["context"]


def test_brackets_inside_strings_do_not_count_as_nesting(engine):
    context = {"note": "[{" * 2000 + '\\"]"' + "[" * 50}
    response = api_client(engine).post(
        "/api/v1/recommendations", {"hcp": "H1", "context": context}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Recommendation.objects.get().request["context"] == context


@pytest.mark.parametrize(
    "raw",
    [
        b'"' + b'\\"' * 50_000 + b"\\",  # unterminated string of escaped quotes
        b'["\\' + b"[" * 50,
        b"[" * 33 + b'"' + b"]" * 33,
    ],
)
def test_the_depth_scan_answers_for_malformed_text(raw):
    # Malformed text either passes the scan (the parser then reports it) or is too deep;
    # the scan never recurses and never retries from each quote.
    assert bounds.json_depth_error(raw, 32) in (None, "")


def test_the_depth_scan_names_the_field_and_the_batch_item():
    deep = "[" * 40 + "]" * 40
    assert bounds.json_depth_error(f'{{"a": 1, "b": {deep}}}'.encode(), 32) == "b"
    body = f'{{"events": [{{"x": "{{["}}, {{"hcp": "h", "type": {deep}}}]}}'
    assert bounds.json_depth_error(body.encode(), 32) == "events.1.type"
    assert bounds.json_depth_error(deep.encode(), 32) == ""
    assert bounds.json_depth_error(("[" * 32 + "]" * 32).encode(), 32) is None


# --- point 4: values that broke an insert or arithmetic -----------------------------------


def test_dwell_seconds_past_float_range_is_rejected_naming_the_field(engine, author, vocabulary):
    version = make_module(author)
    event = {
        "event_id": str(uuid.uuid4()),
        "hcp": "HCP-1",
        "module": version.module_id,
        "type": "read",
        "occurred_at": "2026-01-01T00:00:00Z",
        "dwell_seconds": 10**400,
    }
    response = api_client(engine).post("/api/v1/events", {"events": [event]}, format="json")
    assert response.status_code == 200, response.content
    assert list(response.json()["rejected"][0]["errors"]) == ["dwell_seconds"]
    assert not EngagementEvent.objects.exists()


@pytest.mark.parametrize("value", ['"a\\u0000b"', '"\\udfff"', '"\\ud800x"', "1e400", "-1e999"])
def test_unstorable_context_values_are_400_naming_context(engine, value):
    text = '{"hcp": "HCP-1", "context": {"journey": {"stage": VALUE}}}'.replace("VALUE", value)
    response = post_raw(api_client(engine), "/api/v1/recommendations", text)
    assert response.status_code == 400, response.content
    assert list(errors_of(response)) == ["context"]
    assert not Recommendation.objects.exists()


def test_a_valid_surrogate_pair_is_ordinary_text(engine):
    response = post_raw(
        api_client(engine),
        "/api/v1/recommendations",
        '{"hcp": "H1", "context": {"e": "\\ud83d\\ude00"}}',
    )
    assert response.status_code == 200, response.content
    assert Recommendation.objects.get().request["context"] == {"e": "\U0001f600"}


@pytest.mark.parametrize("value", ['"\\ud800"', '"\\u0000"'])
def test_unstorable_hcp_attributes_are_400_naming_attributes(engine, value):
    client = api_client(engine)
    text = '{"attributes": {"a": VALUE}}'.replace("VALUE", value)
    response = post_raw(client, "/api/v1/hcps/HCP-5", text, "PUT")
    assert response.status_code == 400, response.content
    assert list(errors_of(response)) == ["attributes"]
    assert not HCP.objects.exists()


def test_unstorable_text_in_an_hcp_profile_field_is_rejected_by_the_action(engine):
    from content_modules.affinity.ingest import hcps_bulk_upsert

    result = hcps_bulk_upsert(
        actor=engine,
        payload={"hcps": [{"external_id": "H1", "specialty": "\ud800"}, {"external_id": "H2"}]},
    )
    assert result.created == 1 and list(result.rejected[0]["errors"]) == ["specialty"]
    assert list(HCP.objects.values_list("external_id", flat=True)) == ["H2"]


@pytest.mark.parametrize("value", ["²", "١٢", "1²", "0", "-1", "9" * 30, " 1"])
def test_unicode_digits_in_id_query_parameters_are_400_naming_them(admin_user, author, value):
    version = make_module(author)
    client = api_client(admin_user)
    reviews = client.get("/api/v1/reviews", {"module": value})
    notes = client.get(f"/api/v1/modules/{version.module_id}/annotations", {"version": value})
    assert reviews.status_code == 400 and list(errors_of(reviews)) == ["module"]
    assert notes.status_code == 400 and list(errors_of(notes)) == ["version"]


def test_ascii_id_query_parameters_still_filter(admin_user, author):
    version = make_module(author)
    client = api_client(admin_user)
    assert client.get("/api/v1/reviews", {"module": str(version.module_id)}).status_code == 200
    notes = client.get(f"/api/v1/modules/{version.module_id}/annotations", {"version": "1"})
    assert notes.status_code == 200


# --- point 12: stored free JSON is capped -----------------------------------------------


def test_a_15_mb_context_is_413_naming_context_and_nothing_is_logged(engine):
    text = '{"hcp": "HCP-1", "context": {"blob": "' + "x" * 15_000_000 + '"}}'
    response = post_raw(api_client(engine), "/api/v1/recommendations", text)
    assert response.status_code == 413, response.content[:300]
    assert list(errors_of(response)) == ["context"]
    assert not Recommendation.objects.exists()


def test_the_context_cap_is_a_setting_in_bytes_of_compact_json(engine, settings):
    settings.RECOMMENDATION_CONTEXT_MAX_BYTES = 1000
    client = api_client(engine)
    fits = {"a": "é" * 494}  # {"a":"..."} is 8 + 988 bytes in UTF-8
    over = {"a": "é" * 497}
    ok = client.post("/api/v1/recommendations", {"hcp": "H1", "context": fits}, format="json")
    big = client.post("/api/v1/recommendations", {"hcp": "H1", "context": over}, format="json")
    assert ok.status_code == 200, ok.content
    assert big.status_code == 413 and list(errors_of(big)) == ["context"]
    assert Recommendation.objects.count() == 1


def test_numbers_that_grow_when_stored_are_measured_as_stored(engine, settings):
    # 1e15 is four bytes sent and eighteen stored: a small body must not slip past the cap.
    settings.RECOMMENDATION_CONTEXT_MAX_BYTES = 1000
    text = '{"hcp": "H1", "context": {"n": [NUMBERS]}}'.replace("NUMBERS", ",".join(["1e15"] * 100))
    response = post_raw(api_client(engine), "/api/v1/recommendations", text)
    assert response.status_code == 413, response.content
    assert list(errors_of(response)) == ["context"]


def test_context_deeper_than_its_own_limit_is_400_on_the_fast_path(engine):
    # A plainly valid body: the serializer is skipped, the bound still holds.
    context = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}
    response = api_client(engine).post(
        "/api/v1/recommendations", {"hcp": "H1", "context": context}, format="json"
    )
    assert response.status_code == 400, response.content
    assert list(errors_of(response)) == ["context"]
    assert not Recommendation.objects.exists()


def test_oversized_hcp_attributes_are_413_on_put_and_rejected_in_bulk(engine):
    client = api_client(engine)
    attributes = {"notes": "x" * 20_000}
    put = client.put("/api/v1/hcps/HCP-7", {"attributes": attributes}, format="json")
    assert put.status_code == 413 and list(errors_of(put)) == ["attributes"]
    bulk = client.post(
        "/api/v1/hcps/bulk",
        {"hcps": [{"external_id": "HCP-8", "attributes": attributes}, {"external_id": "HCP-9"}]},
        format="json",
    )
    assert bulk.status_code == 200, bulk.content
    assert list(bulk.json()["rejected"][0]["errors"]) == ["attributes"]
    assert list(HCP.objects.values_list("external_id", flat=True)) == ["HCP-9"]


def test_hcp_attributes_deeper_than_their_limit_are_400(engine):
    attributes = {"a": [[[[[[[[[1]]]]]]]]]}
    response = api_client(engine).put(
        "/api/v1/hcps/HCP-7", {"attributes": attributes}, format="json"
    )
    assert response.status_code == 400 and list(errors_of(response)) == ["attributes"]
    assert not HCP.objects.exists()
