"""The recommendation log: every answer stored with its items, all or nothing.

On PostgreSQL the answer and its items go in one statement, in a transaction
of their own committed asynchronously (DELIVERY_LOG_ASYNC_COMMIT); these tests
run outside any test transaction so that path is the one taken.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection

from content_modules.affinity.models import HCP
from content_modules.delivery import log
from content_modules.delivery.models import Recommendation, RecommendationItem
from tests.factories import api_client

from .helpers import approved, recommend


@pytest.fixture
def engine_client(engine):
    return api_client(engine)


def _session_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_an_answer_is_stored_with_its_items_outside_any_transaction(
    transactional_db, author, engine_client
):
    # Given approved modules and a known HCP, and no transaction around the request
    modules = {approved(author).module_id for _ in range(4)}
    HCP.objects.create(external_id="HCP-1", specialty="cardiology")
    assert not connection.in_atomic_block
    # When the engine asks for the top 3
    body = recommend(engine_client, hcp="HCP-1", k=3).json()
    # Then the answer and exactly its items are in the log, rank by rank
    stored = Recommendation.objects.get(pk=body["recommendation_id"])
    assert stored.hcp.external_id == "HCP-1" and stored.request["k"] == 3
    items = list(stored.items.order_by("rank").values_list("rank", "module_id", "version_id"))
    assert items == [(i["rank"], i["module"], i["version_id"]) for i in body["items"]]
    assert len(items) == 3 and {m for _, m, _ in items} <= modules
    # And the asynchronous commit stayed inside that transaction (SET LOCAL)
    if connection.vendor == "postgresql":
        assert _session_setting("synchronous_commit") == "on"


def test_a_rejected_answer_writes_nothing_and_leaves_the_connection_usable(
    transactional_db, author
):
    # Given an answer whose items break a constraint (two items at rank 1)
    versions = [approved(author) for _ in range(2)]
    recommendation = Recommendation(hcp_external_id="HCP-1", request={}, policy="greedy")
    items = [
        {
            "rank": 1,
            "slot": "",
            "module_id": v.module_id,
            "version_id": v.pk,
            "score": 0.5,
            "propensity": 1.0,
            "explored": False,
            "frequency_capped": False,
        }
        for v in versions
    ]
    # When it is stored
    with pytest.raises(IntegrityError):
        log.store(recommendation, items)
    # Then neither the answer nor any item was written
    assert not Recommendation.objects.exists()
    assert not RecommendationItem.objects.exists()
    # And the connection is not left inside the failed transaction
    assert not connection.in_atomic_block
    if connection.vendor == "postgresql":
        assert connection.connection.info.transaction_status.name == "IDLE"
    assert Recommendation.objects.count() == 0


def test_recommendation_ids_are_time_ordered_version_7_uuids():
    import time
    import uuid

    from content_modules.delivery.models import uuid7

    first = uuid7()
    time.sleep(0.002)
    ids = [uuid7() for _ in range(50)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in [first, *ids])
    assert first < min(ids)  # a later millisecond sorts after
    assert len(set(ids)) == 50
    assert abs((first.int >> 80) - time.time() * 1000) < 5000  # milliseconds since the epoch


def test_a_connection_the_server_dropped_is_replaced_not_used(
    transactional_db, author, engine_client
):
    # Given a recommendation answered on a persistent connection
    from tests.services import other_connection, require_postgres

    require_postgres()
    approved(author)
    assert recommend(engine_client, hcp="HCP-1", k=1).status_code == 200
    # When the server ends that connection between two requests
    pid = connection.connection.info.backend_pid
    with other_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # Then the next request checks the connection, opens a new one and answers
    # (Django's request_started does this; its test client leaves it out)
    from django.db import close_old_connections

    close_old_connections()
    response = recommend(engine_client, hcp="HCP-1", k=1)
    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != pid
    assert Recommendation.objects.filter(pk=response.json()["recommendation_id"]).exists()


def test_deleting_an_answer_deletes_its_items(db, author, engine_client):
    # Given two logged answers (items reference their answer without a database check)
    HCP.objects.create(external_id="HCP-1", specialty="cardiology")
    for _ in range(3):
        approved(author)
    first = recommend(engine_client, hcp="HCP-1", k=2).json()["recommendation_id"]
    second = recommend(engine_client, hcp="HCP-1", k=2).json()["recommendation_id"]
    # When one is deleted (the admin, a retention job)
    Recommendation.objects.filter(pk=first).delete()
    # Then its items go with it and the other answer keeps its own
    assert not RecommendationItem.objects.filter(recommendation_id=first).exists()
    assert RecommendationItem.objects.filter(recommendation_id=second).count() == 2
