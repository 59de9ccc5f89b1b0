"""The hot path's statements are prepared on the server, once per connection.

``contentapp.db.run_prepared`` asks psycopg to prepare the token lookup, the
serving snapshot and the recommendation log. Django hands psycopg
``prepare_threshold=None``, which silently turns every prepared statement off,
so these tests read PostgreSQL's own list of the session's prepared
statements rather than trusting the flag.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from content_modules.affinity.models import HCP
from tests.factories import api_client
from tests.services import require_postgres

from .helpers import approved, recommend


def _prepared() -> dict[str, int]:
    """This session's prepared statements: text -> times executed as planned."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _one(statements: dict[str, int], *fragments: str) -> int:
    found = [n for text, n in statements.items() if all(f in text for f in fragments)]
    assert len(found) == 1, (fragments, list(statements))
    return found[0]


@pytest.fixture
def world(db, author, engine):
    require_postgres()
    for _ in range(3):
        approved(author)
    HCP.objects.create(external_id="HCP-1", specialty="cardiology")
    return api_client(engine)


def test_a_recommendation_runs_its_three_statements_prepared_and_reuses_them(world):
    # Given a connection that has prepared nothing yet
    connection.ensure_connection()
    assert _prepared() == {}
    # When the engine asks for a recommendation twice
    first = recommend(world, hcp="HCP-1", k=2)
    after_one = _prepared()
    second = recommend(world, hcp="HCP-1", k=2)
    after_two = _prepared()
    assert first.status_code == second.status_code == 200
    # Then the token lookup, the snapshot and the log insert are prepared statements
    keys = [
        ("accounts_apitoken",),
        ("delivery_deliverygeneration", "affinity_engagementevent"),
        ("INSERT INTO", "delivery_recommendationitem"),
    ]
    assert len(after_one) == len(after_two) == 3
    # And the second request executed the same statements again, not new ones
    for fragments in keys:
        assert _one(after_two, *fragments) == _one(after_one, *fragments) + 1


@override_settings(DATABASE_PREPARED_STATEMENTS=False)
def test_prepared_statements_can_be_turned_off_for_a_pooler(world):
    # Given the setting off (PgBouncer in transaction mode keeps no session state)
    connection.ensure_connection()
    # When the engine asks for a recommendation
    response = recommend(world, hcp="HCP-1", k=2)
    # Then it is answered and nothing was prepared on the server
    assert response.status_code == 200 and len(response.json()["items"]) == 2
    assert _prepared() == {}
