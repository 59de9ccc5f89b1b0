"""Engagement event ingestion: idempotency, partial acceptance, version resolution, bad input."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from tests import factories
from tests.services import require_postgres


@pytest.fixture
def client(engine):
    return factories.api_client(engine)


@pytest.fixture
def approved(author):
    version = factories.make_module(author)
    factories.force_status(version, VersionStatus.APPROVED)
    return version


def event(module_id, **overrides):
    """One valid event for the module, an hour ago."""
    values = {
        "event_id": str(uuid.uuid4()),
        "hcp": "HCP-123",
        "module": module_id,
        "type": "opened",
        "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "channel": "email",
        "recommendation_id": None,
        "dwell_seconds": None,
    }
    values.update(overrides)
    return values


def post(client, events):
    return client.post("/api/v1/events", {"events": events}, format="json")


def test_valid_events_are_stored_with_the_version_and_an_unknown_hcp_is_created(client, approved):
    events = [event(approved.module_id), event(approved.module_id, type="read", dwell_seconds=42)]

    response = post(client, events)

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = list(EngagementEvent.objects.order_by("type"))
    assert [(r.type, r.module_id, r.version_id, r.channel) for r in rows] == [
        ("opened", approved.module_id, approved.pk, "email"),
        ("read", approved.module_id, approved.pk, "email"),
    ]
    assert rows[1].dwell_seconds == 42.0
    hcp = HCP.objects.get(external_id="HCP-123")
    assert (hcp.specialty, hcp.segment, hcp.attributes) == ("", "", {})


def test_a_replayed_batch_changes_nothing_and_answers_duplicates(client, approved):
    events = [event(approved.module_id, hcp=f"HCP-{i}") for i in range(5)]
    post(client, events)
    before = list(EngagementEvent.objects.values_list("event_id", "received_at", "type"))

    replay = post(client, events)

    assert replay.json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    after = list(EngagementEvent.objects.values_list("event_id", "received_at", "type"))
    assert after == before
    assert HCP.objects.count() == 5


def test_repeats_inside_one_batch_count_as_duplicates(client, approved):
    first = event(approved.module_id)
    again = dict(first, type="clicked")
    replayed_earlier = event(approved.module_id)
    post(client, [replayed_earlier])

    response = post(client, [first, again, replayed_earlier, first])

    assert response.json() == {"accepted": 1, "duplicates": 3, "rejected": []}
    assert EngagementEvent.objects.get(event_id=first["event_id"]).type == "opened"
    assert EngagementEvent.objects.count() == 2


BAD_EVENTS = {
    "unknown type": ({"type": "liked"}, "type"),
    "module that does not exist": ({"module": 999_999}, "module"),
    "module missing": ({"module": None}, "module"),
    "timestamp without time zone": ({"occurred_at": "2026-11-20T09:15:00"}, "occurred_at"),
    "timestamp that is not one": ({"occurred_at": "yesterday"}, "occurred_at"),
    "malformed external id": ({"hcp": "HCP 1/../x"}, "hcp"),
    "unknown channel": ({"channel": "fax"}, "channel"),
    "negative dwell": ({"type": "read", "dwell_seconds": -3}, "dwell_seconds"),
    "dwell that is text": ({"dwell_seconds": "long"}, "dwell_seconds"),
    "event id that is no uuid": ({"event_id": "42"}, "event_id"),
    "recommendation id that is no uuid": ({"recommendation_id": "r-1"}, "recommendation_id"),
    "version that does not exist": ({"module": None, "version": 999_999}, "version"),
}


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_a_bad_event_is_rejected_by_index_and_its_neighbours_are_kept(client, approved, case):
    overrides, field = BAD_EVENTS[case]
    bad = event(approved.module_id, **overrides)
    if bad.get("module") is None:
        bad.pop("module")
    good = [event(approved.module_id), event(approved.module_id)]

    response = post(client, [good[0], bad, good[1]])

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1]
    assert field in body["rejected"][0]["errors"]
    stored = set(EngagementEvent.objects.values_list("event_id", flat=True))
    assert stored == {uuid.UUID(g["event_id"]) for g in good}


def test_an_item_that_is_not_an_object_is_rejected_by_index(client, approved):
    response = post(client, ["opened", event(approved.module_id)])

    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 0


def test_future_timestamps_are_tolerated_only_within_the_setting(client, approved, settings):
    settings.EVENTS_FUTURE_TOLERANCE_SECONDS = 300
    now = timezone.now()
    skewed = event(approved.module_id, occurred_at=(now + timedelta(minutes=2)).isoformat())
    future = event(approved.module_id, occurred_at=(now + timedelta(minutes=10)).isoformat())

    response = post(client, [skewed, future])

    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert "future" in body["rejected"][0]["errors"]["occurred_at"][0]


def test_timestamps_in_other_time_zones_are_stored_as_the_same_instant(client, approved):
    response = post(client, [event(approved.module_id, occurred_at="2026-01-20T10:15:00+01:00")])

    assert response.json()["accepted"] == 1
    stored = EngagementEvent.objects.get().occurred_at
    assert stored.isoformat() == "2026-01-20T09:15:00+00:00"


def test_a_batch_over_ten_thousand_is_413_naming_events_and_stores_nothing(client, approved):
    events = [event(approved.module_id) for _ in range(10_001)]

    response = post(client, events)

    assert response.status_code == 413
    assert "events" in response.json()["errors"]
    assert not EngagementEvent.objects.exists()


def test_a_body_over_the_size_limit_is_413(client, approved, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000

    response = post(client, [event(approved.module_id) for _ in range(20)])

    assert response.status_code == 413
    assert not EngagementEvent.objects.exists()


def test_a_body_without_an_events_list_is_400_naming_events(client):
    assert "events" in client.post("/api/v1/events", {}, format="json").json()["errors"]
    response = client.post("/api/v1/events", {"events": {"a": 1}}, format="json")
    assert response.status_code == 400
    assert "events" in response.json()["errors"]


def test_malformed_json_is_400_not_500(client):
    response = client.post("/api/v1/events", "{not json", content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("role", ["author", "medical_reviewer", "regulatory_reviewer"])
def test_authors_and_reviewers_may_not_post_events(approved, role):
    client = factories.api_client(factories.make_user(role))

    response = post(client, [event(approved.module_id)])

    assert response.status_code == 403
    assert not EngagementEvent.objects.exists()


def test_the_version_approved_at_the_event_time_is_implied(client, author, approved):
    v1 = approved
    t0 = timezone.now() - timedelta(days=30)
    ModuleVersion.objects.filter(pk=v1.pk).update(approved_at=t0)
    v2 = module_edit(actor=author, module=v1.module, changes={"headline": "A new headline"})
    factories.force_status(v1, VersionStatus.SUPERSEDED)
    factories.force_status(v2, VersionStatus.APPROVED)
    ModuleVersion.objects.filter(pk=v2.pk).update(approved_at=t0 + timedelta(days=10))
    m = v1.module_id
    at = {
        "before first approval": t0 - timedelta(days=1),
        "while v1 served": t0 + timedelta(days=5),
        "while v2 served": t0 + timedelta(days=20),
    }
    events = {label: event(m, occurred_at=when.isoformat()) for label, when in at.items()}

    post(client, list(events.values()))

    version_of = dict(EngagementEvent.objects.values_list("event_id", "version_id"))
    resolved = {label: version_of[uuid.UUID(e["event_id"])] for label, e in events.items()}
    assert resolved == {
        "before first approval": v1.pk,
        "while v1 served": v1.pk,
        "while v2 served": v2.pk,
    }


def test_a_version_may_be_given_instead_of_the_module(client, author, approved):
    other = factories.make_module(author)
    given = event(None, version=approved.pk)
    given.pop("module")
    mismatched = event(other.module_id, version=approved.pk)

    response = post(client, [given, mismatched])

    body = response.json()
    assert body["accepted"] == 1
    assert "belongs to module" in body["rejected"][0]["errors"]["version"][0]
    row = EngagementEvent.objects.get()
    assert (row.module_id, row.version_id) == (approved.module_id, approved.pk)


def test_events_for_a_never_approved_module_are_kept_without_a_version(client, author):
    draft = factories.make_module(author)

    response = post(client, [event(draft.module_id)])

    assert response.json()["accepted"] == 1
    assert EngagementEvent.objects.get().version_id is None


def test_unsubscribed_events_record_the_channel_for_delivery(client, approved):
    post(
        client,
        [
            event(approved.module_id, type="unsubscribed", channel="rep_email"),
            event(approved.module_id, hcp="HCP-9", type="unsubscribed", channel=None),
        ],
    )

    assert client.get("/api/v1/hcps/HCP-123").json()["unsubscribed_channels"] == ["rep_email"]
    assert client.get("/api/v1/hcps/HCP-9").json()["unsubscribed_channels"] == ["*"]


@pytest.mark.postgres
def test_the_same_batch_posted_twice_at_once_in_any_order_is_stored_once(
    transactional_db, engine, author
):
    require_postgres()
    version = factories.make_module(author)
    factories.force_status(version, VersionStatus.APPROVED)
    events = [event(version.module_id, hcp=f"HCP-{i % 50}") for i in range(2_000)]
    # Known HCPs: creating new ones would already serialise the two requests.
    HCP.objects.bulk_create([HCP(external_id=f"HCP-{i}") for i in range(50)])
    answers = []

    def send(batch):
        try:
            answers.append(post(factories.api_client(engine), batch).json())
        finally:
            connection.close()

    # Opposite orders: a naive insert would deadlock the two transactions.
    batches = [events, list(reversed(events))]
    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 2
    assert sum(a["accepted"] for a in answers) == 2_000
    assert sum(a["duplicates"] for a in answers) == 2_000
    assert EngagementEvent.objects.count() == 2_000
    assert HCP.objects.count() == 50


def test_the_number_of_queries_does_not_grow_with_the_batch(client, author, approved):
    other = factories.make_module(author)
    factories.force_status(other, VersionStatus.APPROVED)

    def queries_for(n):
        events = [
            event([approved.module_id, other.module_id][i % 2], hcp=f"H{n}-{i}") for i in range(n)
        ]
        with CaptureQueriesContext(connection) as captured:
            assert post(client, events).json()["accepted"] == n
        return len(captured)

    # SQLite splits bulk inserts at 999 parameters (124 HCPs); PostgreSQL takes
    # the whole batch in one statement.
    large = 1_500 if connection.vendor == "postgresql" else 120
    assert queries_for(5) == queries_for(large)
