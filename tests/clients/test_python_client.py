"""A Python client generated from the served schema drives the engine's and the authors' journeys.

openapi-python-client generates a package from ``/api/schema/`` of a live
server; every module of it is imported, and the journeys run through its
functions and models against that server (issue 13, point 9). A schema that
does not describe what the server does (an undeclared status, a field typed
wrong, a body the client cannot send) fails here, in the generated code.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from content_modules.affinity.learning import scoring
from content_modules.affinity.receivers import embed_changed_version
from content_modules.library.signals import version_content_changed
from tests.affinity.test_learning import build_world, train_active
from tests.factories import PASSWORD, make_user

from .generated import BINARY_PATHS, as_dict, generate, unload

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PACKAGE = "contentapp_generated_client"
V1 = "/api/v1"
EMBED_ON_CHANGE = "affinity.embed_version_on_change"


@pytest.fixture(scope="module")
def generated(schema_file, tmp_path_factory):
    client = generate(schema_file, tmp_path_factory.mktemp("client"), PACKAGE)
    yield client
    unload(PACKAGE)


def test_every_generated_module_imports_and_every_operation_is_generated(generated, schema_file):
    import json

    schema = json.loads(schema_file.read_text())
    declared = {
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in {"get", "post", "put", "patch", "delete"}
    }

    assert len(generated.modules) > 50
    assert set(generated.operations) == declared
    # The generator skipped nothing but the binary answers (images, PDFs).
    assert {path for _, path in generated.warnings} <= set(BINARY_PATHS), generated.warnings


def _token(api, client, username: str, **extra) -> str:
    answer = api.call(
        client,
        "POST",
        f"{V1}/auth/token",
        {"username": username, "password": PASSWORD, **extra},
    )
    assert answer.status_code == HTTPStatus.OK, answer.content
    return answer.parsed.token


@pytest.fixture
def world(live_server, author, embedding_model):
    scoring.reset_cache()
    # The world's modules are embedded in one batch at its end (build_world), not one
    # by one after each commit as a live server's transactional test would (2 s each).
    version_content_changed.disconnect(dispatch_uid=EMBED_ON_CHANGE)
    try:
        versions, hcps = build_world(author, n_modules=10, n_hcps=20, deliveries=10)
    finally:
        version_content_changed.connect(embed_changed_version, dispatch_uid=EMBED_ON_CHANGE)
    model = train_active()
    yield versions, hcps, model
    scoring.reset_cache()


def test_the_engine_journey_through_the_generated_client(generated, live_server, world, engine):
    versions, hcps, model = world
    api = generated
    token = _token(api, api.client(live_server.url), engine.username, name="generated client")
    client = api.client(live_server.url, token)

    # HCPs: one upsert with attributes, then a bulk with one bad item
    put = api.call(
        client,
        "PUT",
        f"{V1}/hcps/{{external_id}}",
        {
            "specialty": "cardiology",
            "segment": "digital",
            "region": "UK-London",
            "preferred_channel": "email",
            "attributes": {"years_in_practice": 12},
        },
        external_id="HCP-GEN-1",
    )
    assert put.status_code == HTTPStatus.CREATED, put.content
    assert put.parsed.external_id == "HCP-GEN-1"
    assert as_dict(put.parsed.attributes) == {"years_in_practice": 12}
    bulk = api.call(
        client,
        "POST",
        f"{V1}/hcps/bulk",
        {
            "hcps": [
                {"external_id": "HCP-GEN-2", "specialty": "oncology"},
                {"external_id": "HCP-GEN-1", "specialty": "cardiology", "segment": "field"},
                {"external_id": "HCP-GEN-3", "specialty": "x" * 65},
            ]
        },
    )
    assert bulk.status_code == HTTPStatus.OK, bulk.content
    assert (bulk.parsed.created, bulk.parsed.updated) == (1, 1)
    assert [r.index for r in bulk.parsed.rejected] == [2]

    # Events: two good and one for an unknown module; then the same batch replayed
    now = timezone.now()
    module_id = versions[0].module_id
    events = {
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "hcp": "HCP-GEN-1",
                "module": module_id,
                "type": kind,
                "occurred_at": (now - timedelta(minutes=10 - i)).isoformat(),
                "channel": "email",
            }
            for i, kind in enumerate(["delivered", "opened"])
        ]
        + [
            {
                "event_id": str(uuid.uuid4()),
                "hcp": "HCP-GEN-1",
                "module": 987654321,
                "type": "clicked",
                "occurred_at": now.isoformat(),
            }
        ]
    }
    first = api.call(client, "POST", f"{V1}/events", events)
    replay = api.call(client, "POST", f"{V1}/events", events)
    assert first.status_code == HTTPStatus.OK, first.content
    assert (first.parsed.accepted, first.parsed.duplicates) == (2, 0)
    assert [r.index for r in first.parsed.rejected] == [2]
    assert (replay.parsed.accepted, replay.parsed.duplicates) == (0, 2)

    # Recommendations: top-k, slots, exclude, explore
    hcp = hcps[0].external_id
    top = api.call(client, "POST", f"{V1}/recommendations", {"hcp": hcp, "k": 3})
    assert top.status_code == HTTPStatus.OK, top.content
    assert [item.rank for item in top.parsed.items] == [1, 2, 3]
    assert top.parsed.model_version == model.model_version
    best = top.parsed.items[0].module
    slots = api.call(
        client,
        "POST",
        f"{V1}/recommendations",
        {"hcp": hcp, "slots": ["safety", "efficacy"], "channel": "email"},
    )
    assert slots.status_code == HTTPStatus.OK, slots.content
    assert [item.slot for item in slots.parsed.items] == ["safety", "efficacy"]
    assert [item.content.tags.message for item in slots.parsed.items] == ["safety", "efficacy"]
    excluded = api.call(
        client, "POST", f"{V1}/recommendations", {"hcp": hcp, "k": 5, "exclude": [best]}
    )
    assert excluded.status_code == HTTPStatus.OK, excluded.content
    assert best not in [item.module for item in excluded.parsed.items]
    explored = api.call(
        client, "POST", f"{V1}/recommendations", {"hcp": hcp, "k": 4, "explore": True}
    )
    assert explored.status_code == HTTPStatus.OK, explored.content
    assert all(0 < item.propensity <= 1 for item in explored.parsed.items)
    logged = api.call(
        client,
        "GET",
        f"{V1}/recommendations/{{recommendation_id}}",
        recommendation_id=top.parsed.recommendation_id,
    )
    assert logged.status_code == HTTPStatus.OK, logged.content

    # Approved content: a page of the list, then one item
    listed = api.call(client, "GET", f"{V1}/content", channel="email", page_size=5)
    assert listed.status_code == HTTPStatus.OK, listed.content
    assert listed.parsed.count == len(versions)
    assert len(listed.parsed.results) == 5
    one = api.call(client, "GET", f"{V1}/content/{{module}}", module=module_id)
    assert one.status_code == HTTPStatus.OK, one.content
    assert (one.parsed.module, one.parsed.version) == (module_id, versions[0].number)

    # Content sync: a full listing by cursor (changed_since=0), then from its next_cursor
    copy: dict[int, int] = {}
    cursor = "0"
    for _ in range(100):
        page = api.call(
            client, "GET", f"{V1}/content", channel="email", changed_since=cursor, page_size=4
        )
        assert page.status_code == HTTPStatus.OK, page.content
        for tombstone in page.parsed.tombstones:
            if copy.get(tombstone.module) == tombstone.version_id:
                del copy[tombstone.module]
        copy.update({item.module: item.version_id for item in page.parsed.results})
        cursor = page.parsed.next_cursor
        if not page.parsed.has_more:
            break
    assert copy == {v.module_id: v.pk for v in versions}
    assert page.parsed.count == len(versions)
    since = api.call(client, "GET", f"{V1}/content", channel="email", changed_since=cursor)
    assert since.status_code == HTTPStatus.OK, since.content
    assert (since.parsed.results, since.parsed.tombstones) == ([], [])
    assert (since.parsed.next_cursor, since.parsed.has_more) == (cursor, False)

    # Affinity, the model in use, a training run
    affinity = api.call(client, "GET", f"{V1}/hcps/{{external_id}}/affinity", external_id=hcp)
    assert affinity.status_code == HTTPStatus.OK, affinity.content
    assert affinity.parsed.model_version == model.model_version
    assert set(as_dict(affinity.parsed.tonality)) == {"clinical", "empathetic", "urgent"}
    in_use = api.call(client, "GET", f"{V1}/affinity/model")
    assert in_use.status_code == HTTPStatus.OK, in_use.content
    assert in_use.parsed.model_version == model.model_version
    train = api.call(client, "POST", f"{V1}/affinity/train")
    assert train.status_code == HTTPStatus.ACCEPTED, train.content
    assert train.parsed.task_id


def test_the_authoring_journey_through_the_generated_client(
    generated, live_server, author, medical, legal, regulatory, vocabulary, embedding_model
):
    api = generated
    anonymous = api.client(live_server.url)
    as_author = api.client(live_server.url, _token(api, anonymous, author.username))
    expires = timezone.localdate() + timedelta(days=365)

    created = api.call(
        as_author,
        "POST",
        f"{V1}/modules",
        {
            "title": "Generated-client module",
            "headline": "Fewer events",
            "body": "In the pivotal trial, fewer events were seen.",
            "key_message": "Fewer events.",
            "call_to_action": "Read the study",
            "brand": "cardiozen",
            "market": "UK",
            "channels": ["email"],
            "tags": {
                "message": "efficacy",
                "theme": ["outcomes"],
                "tonality": "clinical",
                "format": "text",
            },
            "expires_on": expires.isoformat(),
        },
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    module_id = created.parsed.id
    assert created.parsed.status == "draft"

    submitted = api.call(as_author, "POST", f"{V1}/modules/{{id}}/submit", id=module_id)
    assert submitted.status_code == HTTPStatus.OK, submitted.content

    for reviewer in (medical, legal, regulatory):
        as_reviewer = api.client(live_server.url, _token(api, anonymous, reviewer.username))
        queue = api.call(as_reviewer, "GET", f"{V1}/reviews", mine=True)
        assert queue.status_code == HTTPStatus.OK, queue.content
        (task,) = [t for t in queue.parsed.results if t.module == module_id]
        decided = api.call(
            as_reviewer,
            "POST",
            f"{V1}/reviews/{{id}}/decision",
            {"decision": "approve", "comment": "Fine.", "password": PASSWORD},
            id=task.id,
        )
        assert decided.status_code == HTTPStatus.OK, decided.content

    final = api.call(as_author, "GET", f"{V1}/modules/{{id}}", id=module_id)
    assert final.status_code == HTTPStatus.OK, final.content
    assert str(final.parsed.status) == "approved"
    engine = make_user("engine")
    as_engine = api.client(live_server.url, _token(api, anonymous, engine.username))
    served = api.call(as_engine, "GET", f"{V1}/content/{{module}}", module=module_id)
    assert served.status_code == HTTPStatus.OK, served.content
    assert served.parsed.content.headline == "Fewer events"
    feed = api.call(as_engine, "GET", f"{V1}/content", changed_since="0", page_size=500)
    assert feed.status_code == HTTPStatus.OK, feed.content
    assert feed.parsed.has_more is False
    (item,) = [c for c in feed.parsed.results if c.module == module_id]
    assert item.content.headline == "Fewer events"

    # Withdrawn: the engine following from its cursor gets a tombstone (a generated enum)
    as_medical = api.client(live_server.url, _token(api, anonymous, medical.username))
    pulled = api.call(
        as_medical,
        "POST",
        f"{V1}/modules/{{id}}/withdraw",
        {"reason": "Claim outdated", "password": PASSWORD},
        id=module_id,
    )
    assert pulled.status_code == HTTPStatus.OK, pulled.content
    since = api.call(as_engine, "GET", f"{V1}/content", changed_since=feed.parsed.next_cursor)
    assert since.status_code == HTTPStatus.OK, since.content
    assert since.parsed.results == []
    assert [(t.module, t.version_id, str(t.status)) for t in since.parsed.tombstones] == [
        (module_id, item.version_id, "withdrawn")
    ]
