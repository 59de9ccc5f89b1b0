"""Idempotent calls: a retry with the same key answers the first answer, logged once."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection

from content_modules.affinity.models import HCP, TrainingRequest
from content_modules.delivery.models import IdempotentRequest, Recommendation
from tests.celery_support import broker_down
from tests.factories import api_client, make_user
from tests.services import require_postgres

from .helpers import approved

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"


@pytest.fixture
def world(author):
    HCP.objects.create(external_id="HCP-1", specialty="cardiology", segment="digital")
    return [approved(author) for _ in range(4)]


def post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(URL, body, format="json", **headers)


def test_a_retry_with_the_same_key_answers_the_same_recommendation_and_logs_once(world, engine):
    client = api_client(engine)
    key = str(uuid.uuid4())
    body = {"hcp": "HCP-1", "channel": "email", "k": 3, "explore": True}

    first = post(client, body, key)
    again = post(client, body, key)

    assert first.status_code == again.status_code == 200, again.content
    assert again.json() == first.json()
    assert again.json()["items"], "the answer has items"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Recommendation.objects.count() == 1
    assert str(Recommendation.objects.get().pk) == first.json()["recommendation_id"]


def test_the_request_id_field_is_the_same_key_as_the_header(world, engine):
    client = api_client(engine)
    body = {"hcp": "HCP-1", "k": 2, "request_id": "retry-7"}
    first = post(client, body)
    by_header = post(client, {"hcp": "HCP-1", "k": 2}, key="retry-7")
    assert by_header.json()["recommendation_id"] == first.json()["recommendation_id"]
    assert Recommendation.objects.count() == 1


def test_without_a_key_every_call_is_a_new_answer(world, engine):
    client = api_client(engine)
    ids = {post(client, {"hcp": "HCP-1"}).json()["recommendation_id"] for _ in range(2)}
    assert len(ids) == 2 and Recommendation.objects.count() == 2


def test_the_same_key_with_another_body_is_422_and_logs_nothing(world, engine):
    client = api_client(engine)
    post(client, {"hcp": "HCP-1", "k": 2}, key="k-1")
    response = post(client, {"hcp": "HCP-1", "k": 3}, key="k-1")
    assert response.status_code == 422, response.content
    body = response.json()
    assert "Idempotency-Key" in body["errors"]
    assert "different request" in body["errors"]["Idempotency-Key"][0]
    assert Recommendation.objects.count() == 1


def test_keys_belong_to_their_caller(world, engine):
    other_engine = make_user("engine", username="engine-2")
    a = post(api_client(engine), {"hcp": "HCP-1"}, key="shared").json()
    b = post(api_client(other_engine), {"hcp": "HCP-1", "k": 1}, key="shared")
    assert b.status_code == 200
    assert b.json()["recommendation_id"] != a["recommendation_id"]
    assert Recommendation.objects.count() == 2


def test_a_key_older_than_a_day_answers_anew(world, engine, settings):
    client = api_client(engine)
    first = post(client, {"hcp": "HCP-1"}, key="old").json()
    IdempotentRequest.objects.update(
        created_at=IdempotentRequest.objects.get().created_at
        - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS, seconds=1)
    )
    again = post(client, {"hcp": "HCP-1", "k": 1}, key="old")  # another body is fine now
    assert again.status_code == 200
    assert again.json()["recommendation_id"] != first["recommendation_id"]
    assert IdempotentRequest.objects.count() == 1


def test_an_error_is_not_stored_so_the_corrected_retry_is_answered(world, engine):
    client = api_client(engine)
    bad = post(client, {"hcp": "HCP-1", "channel": "fax"}, key="fix-me")
    assert bad.status_code == 400 and "channel" in bad.json()["errors"]
    good = post(client, {"hcp": "HCP-1", "channel": "email"}, key="fix-me")
    assert good.status_code == 200
    assert Recommendation.objects.count() == 1


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256])
def test_a_malformed_key_is_400_naming_it(world, engine, key):
    response = post(api_client(engine), {"hcp": "HCP-1"}, key=key)
    assert response.status_code == 400, response.content
    assert "Idempotency-Key" in response.json()["errors"]
    assert Recommendation.objects.count() == 0


def test_a_request_id_that_differs_from_the_header_is_400(world, engine):
    response = post(api_client(engine), {"hcp": "HCP-1", "request_id": "a"}, key="b")
    assert response.status_code == 400
    assert "request_id" in response.json()["errors"]


def test_the_header_is_declared_in_the_schema(engine):
    schema = api_client(engine).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/recommendations", "/api/v1/affinity/train"):
        params = schema["paths"][path]["post"]["parameters"]
        assert {"in": "header", "name": "Idempotency-Key"}.items() <= next(
            p for p in params if p["name"] == "Idempotency-Key"
        ).items()
        assert "422" in schema["paths"][path]["post"]["responses"]


def test_training_with_a_key_records_one_request(engine):
    client = api_client(engine)
    with broker_down():  # the request stays in the outbox: nothing trains in this test
        first = client.post("/api/v1/affinity/train", HTTP_IDEMPOTENCY_KEY="train-1")
        again = client.post("/api/v1/affinity/train", HTTP_IDEMPOTENCY_KEY="train-1")
        other = client.post("/api/v1/affinity/train", HTTP_IDEMPOTENCY_KEY="train-2")
    assert first.status_code == again.status_code == 202, first.content
    assert again.json() == first.json() == {"task_id": first.json()["task_id"], "queued": False}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["task_id"] != first.json()["task_id"]
    assert TrainingRequest.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_log_one_answer(author, engine):
    require_postgres()
    HCP.objects.create(external_id="HCP-1")
    for _ in range(3):
        approved(author)
    n = 6
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def call(i: int) -> None:
        try:
            client = api_client(engine)
            barrier.wait(timeout=10)
            answers[i] = post(client, {"hcp": "HCP-1", "k": 2}, key="race")
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None and a.status_code == 200 for a in answers), [
        getattr(a, "content", a) for a in answers
    ]
    assert len({a.json()["recommendation_id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == n - 1
    assert Recommendation.objects.count() == 1
