"""GET /api/v1/content?changed_since=: engines that keep a copy hold exactly the content list.

Days pass in these tests by moving the date delivery compares expiry dates with
(``catalogue.today``, the one clock of the content list and the feed), so that a
version can run past its date with no expiry job run, as it does overnight.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from content_modules.delivery import catalogue as catalogue_mod
from content_modules.delivery.models import ContentChange
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.services import module_withdraw, versions_expire
from tests.factories import PASSWORD, api_client, force_status
from tests.review.helpers import approve_all

from .helpers import approved

pytestmark = pytest.mark.django_db

URL = "/api/v1/content"
ITEM_KEYS = {"module", "version", "version_id", "approved_at", "approval_expires_on", "content"}
TOMBSTONE_KEYS = {"status", "module", "version", "version_id", "changed_at"}
PAGE_KEYS = {"count", "next", "previous", "results", "tombstones", "next_cursor", "has_more"}


class Clock:
    """The day delivery believes it is."""

    def __init__(self) -> None:
        self.day = timezone.localdate()

    def __call__(self) -> date:
        return self.day


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(catalogue_mod, "today", clock)
    return clock


def listing(client) -> dict[int, dict]:
    """The approved-now content list, by page numbers (what the copy must equal)."""
    body = client.get(URL, {"page_size": 500}).json()
    assert body["next"] is None
    return {item["module"]: item for item in body["results"]}


class Engine:
    """A local copy kept by the rules of the docs: tombstones, then results, per page."""

    def __init__(self, client, page_size: int, cursor: str = "0") -> None:
        self.client = client
        self.page_size = page_size
        self.cursor = cursor
        self.copy: dict[int, dict] = {}
        self.pages = 0
        self.done = False  # the last page answered has_more false
        self.count: int | None = None

    def apply(self, body: dict) -> None:
        assert set(body) == PAGE_KEYS
        for t in body["tombstones"]:
            assert set(t) == TOMBSTONE_KEYS and t["status"] != "approved"
            held = self.copy.get(t["module"])
            if held is not None and held["version_id"] == t["version_id"]:
                del self.copy[t["module"]]
        for item in body["results"]:
            assert set(item) == ITEM_KEYS
            self.copy[item["module"]] = item

    def step(self) -> None:
        """One page."""
        response = self.client.get(URL, {"changed_since": self.cursor, "page_size": self.page_size})
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) + len(body["tombstones"]) <= self.page_size
        self.apply(body)
        self.pages += 1
        self.cursor = body["next_cursor"]
        self.done = not body["has_more"]
        self.count = body["count"]
        if body["has_more"]:
            assert f"changed_since={body['next_cursor']}" in body["next"]
        else:
            assert body["next"] is None

    def sync(self) -> None:
        """Pages until nothing more waits."""
        for _ in range(10_000):
            self.step()
            if self.done:
                return
        raise AssertionError("the feed never ended")


def start_from_page_numbers(client, page_size: int) -> Engine:
    """An engine that lists by page number in one page, then follows its next_cursor."""
    body = client.get(URL, {"page_size": 500}).json()
    assert body["next"] is None and body["tombstones"] == []
    engine = Engine(client, page_size, cursor=body["next_cursor"])
    engine.apply(body)
    return engine


# --- the property: random histories, several engines, an exact copy after every sync ----


class History:
    """Random approvals, new versions, withdrawals, date moves, days passing, expiry runs."""

    def __init__(self, rng: random.Random, clock: Clock, people, client) -> None:
        self.rng = rng
        self.clock = clock
        self.author, self.medical, self.legal, self.regulatory = people
        self.client = client
        self.done: list[str] = []

    def expiry(self) -> date | None:
        return self.rng.choice([None, None, self.clock.day + timedelta(self.rng.randint(0, 4))])

    def listed(self) -> list[int]:
        return sorted(listing(self.client))

    def act(self) -> None:
        rng = self.rng
        action = rng.choice(
            ["approve", "approve", "edit", "withdraw", "tick", "job", "move", "unapprove"]
        )
        listed = self.listed()
        if action == "approve" or not listed and action in ("edit", "withdraw"):
            approved(self.author, expires_on=self.expiry())
            action = "approve"
        elif action == "edit":
            module = ModuleVersion.objects.get(module_id=rng.choice(listed), status="approved")
            draft = module_edit(
                actor=self.author,
                module=module.module,
                changes={"headline": f"Headline {rng.randint(0, 10**6)}"},
            )
            approve_all(draft, self.medical, self.legal, self.regulatory)  # supersedes
            if rng.random() < 0.5:
                ModuleVersion.objects.filter(pk=draft.pk).update(expires_on=self.expiry())
        elif action == "withdraw":
            module = ModuleVersion.objects.get(module_id=rng.choice(listed), status="approved")
            module_withdraw(
                actor=self.medical, module=module.module, reason="Outdated", password=PASSWORD
            )
        elif action == "tick":
            self.clock.day += timedelta(rng.randint(1, 2))
        elif action == "job":
            versions_expire(today=self.clock.day)
        elif action == "move":
            # An admin moves an approved version's date: ahead, or into the past.
            versions = list(ModuleVersion.objects.filter(status="approved").values_list("pk"))
            if versions:
                (pk,) = rng.choice(versions)
                moved = self.clock.day + timedelta(rng.randint(-2, 3))
                ModuleVersion.objects.filter(pk=pk).update(expires_on=moved)
        elif action == "unapprove" and listed:
            force_status(
                ModuleVersion.objects.get(module_id=rng.choice(listed), status="approved"),
                rng.choice([VersionStatus.DRAFT, VersionStatus.WITHDRAWN]),
            )
        self.done.append(action)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_copies_kept_from_the_feed_equal_the_content_list_after_every_sync(
    seed, clock, author, engine, medical, legal, regulatory
):
    rng = random.Random(seed)
    client = api_client(engine)
    history = History(rng, clock, (author, medical, legal, regulatory), client)
    for _ in range(3):
        approved(author, expires_on=history.expiry())

    # One engine drains the feed after every change; one reads a page or two per change
    # (so its full listing, in pages of one, spans many changes); one started from a
    # page-number listing and its next_cursor; one joins half way.
    eager = Engine(client, page_size=rng.randint(1, 3))
    eager.sync()
    assert eager.copy == listing(client)
    lagging = Engine(client, page_size=1)
    from_pages = start_from_page_numbers(client, page_size=2)
    late: Engine | None = None
    checks = 0

    for n in range(40):
        history.act()
        if n == 20:
            late = Engine(client, page_size=1)
        eager.sync()
        expected = listing(client)
        assert eager.copy == expected, (seed, n, history.done)
        assert eager.count == len(expected)
        for follower in (lagging, late):
            if follower is None:
                continue
            for _ in range(rng.randint(1, 2)):
                follower.step()
            if follower.done:
                assert follower.copy == expected, (seed, n, history.done)
                checks += 1
        if rng.random() < 0.3:
            from_pages.sync()
            assert from_pages.copy == expected, (seed, n, history.done)
            checks += 1

    expected = listing(client)
    for follower in (eager, lagging, late, from_pages):
        assert follower is not None
        follower.sync()
        assert follower.copy == expected
        assert follower.count == len(expected)
    # The history did what it is meant to test.
    kinds = set(ContentChange.objects.values_list("kind", flat=True))
    assert {"approved", "superseded", "withdrawn"} <= kinds, history.done
    assert {"tick", "move"} <= set(history.done)
    assert lagging.pages > 20 and checks > 0


# --- expiry by date, with no expiry job -------------------------------------------------


def test_a_version_past_its_date_is_a_tombstone_before_the_expiry_job_runs(clock, author, engine):
    client = api_client(engine)
    v = approved(author, expires_on=clock.day)
    keep = approved(author, expires_on=clock.day + timedelta(days=5))
    copy = Engine(client, page_size=10)
    copy.sync()
    assert set(copy.copy) == {v.module_id, keep.module_id}

    clock.day += timedelta(days=1)  # v's last day is over; nothing was written
    response = client.get(URL, {"changed_since": copy.cursor})
    body = response.json()
    midnight = timezone.make_aware(datetime.combine(clock.day, time.min))
    assert body["tombstones"] == [
        {
            "status": "expired",
            "module": v.module_id,
            "version": v.number,
            "version_id": v.pk,
            "changed_at": midnight.isoformat().replace("+00:00", "Z"),
        }
    ]
    assert body["results"] == [] and body["has_more"] is False and body["count"] == 1
    copy.apply(body)
    copy.cursor = body["next_cursor"]
    assert copy.copy == listing(client) and set(copy.copy) == {keep.module_id}

    # Asked again the same day: the date expiry is not answered twice.
    again = client.get(URL, {"changed_since": copy.cursor}).json()
    assert (again["tombstones"], again["next_cursor"]) == ([], copy.cursor)
    # The job runs: its own tombstone follows, and drops nothing more.
    versions_expire(today=clock.day)
    copy.sync()
    assert copy.copy == listing(client) and set(copy.copy) == {keep.module_id}


def test_many_versions_expiring_on_one_day_come_in_pages(clock, author, engine):
    client = api_client(engine)
    versions = [approved(author, expires_on=clock.day) for _ in range(5)]
    copy = Engine(client, page_size=2)
    copy.sync()
    assert len(copy.copy) == 5
    clock.day += timedelta(days=1)
    pages_before = copy.pages
    copy.sync()
    assert copy.copy == {} == listing(client)
    assert copy.pages - pages_before == 3  # 2 + 2 + 1 tombstones
    assert {v.pk for v in versions} == set(
        ModuleVersion.objects.filter(status="approved").values_list("pk", flat=True)
    )


def test_a_date_moved_into_the_past_is_an_expired_tombstone(clock, author, engine):
    client = api_client(engine)
    v = approved(author, expires_on=clock.day + timedelta(days=30))
    copy = Engine(client, page_size=5)
    copy.sync()
    ModuleVersion.objects.filter(pk=v.pk).update(expires_on=clock.day - timedelta(days=1))
    body = client.get(URL, {"changed_since": copy.cursor}).json()
    assert [(t["status"], t["version_id"]) for t in body["tombstones"]] == [("expired", v.pk)]
    # Moved ahead again: approved again, with its new date.
    ModuleVersion.objects.filter(pk=v.pk).update(expires_on=clock.day + timedelta(days=9))
    copy.sync()
    assert copy.copy == listing(client)
    assert copy.copy[v.module_id]["approval_expires_on"] == str(clock.day + timedelta(days=9))


# --- the full listing by cursor ---------------------------------------------------------


def test_the_full_listing_by_cursor_skips_nothing_when_items_go_between_pages(
    clock, author, engine, medical
):
    client = api_client(engine)
    versions = [approved(author) for _ in range(6)]
    copy = Engine(client, page_size=2)
    copy.step()
    assert list(copy.copy) == [v.module_id for v in versions[:2]]
    # Page numbers would now shift every item left by one and skip versions[2].
    module_withdraw(actor=medical, module=versions[0].module, reason="Outdated", password=PASSWORD)
    newcomer = approved(author)
    copy.sync()
    assert copy.copy == listing(client)
    assert set(copy.copy) == {v.module_id for v in versions[1:]} | {newcomer.module_id}


def test_filters_apply_to_approvals_and_every_tombstone_is_answered(clock, author, engine):
    client = api_client(engine)
    web = approved(author, channels=("web",))
    email = approved(author, channels=("email",))
    copy = Engine(client, page_size=5)
    body = client.get(URL, {"changed_since": "0", "channel": "email"}).json()
    copy.apply(body)
    assert set(copy.copy) == {email.module_id} and body["count"] == 1
    force_status(web, VersionStatus.WITHDRAWN)
    force_status(email, VersionStatus.WITHDRAWN)
    body = client.get(URL, {"changed_since": body["next_cursor"], "channel": "email"}).json()
    assert {t["version_id"] for t in body["tombstones"]} == {web.pk, email.pk}
    copy.apply(body)
    assert copy.copy == {} and body["count"] == 0


def test_a_cursor_of_the_deprecated_feed_is_accepted(clock, author, engine):
    client = api_client(engine)
    v = approved(author)
    old = client.get("/api/v1/content/changes", {"changed_since": "0"}).json()
    assert old["cursor"].isdigit()
    newer = approved(author)
    body = client.get(URL, {"changed_since": old["cursor"]}).json()
    assert [item["module"] for item in body["results"]] == [newer.module_id]
    assert v.module_id not in {item["module"] for item in body["results"]}


def test_the_page_number_listing_hands_a_cursor_read_before_it(clock, author, engine):
    client = api_client(engine)
    approved(author)
    first = client.get(URL, {"page_size": 1}).json()
    assert first["tombstones"] == [] and first["has_more"] is False
    assert first["next_cursor"] == f"{ContentChange.objects.latest('id').pk}.{clock.day:%Y%m%d}.0"
    nothing = client.get(URL, {"changed_since": first["next_cursor"]}).json()
    assert (nothing["results"], nothing["tombstones"], nothing["has_more"]) == ([], [], False)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"changed_since": ""}, "changed_since"),
        ({"changed_since": "-1"}, "changed_since"),
        ({"changed_since": "abc"}, "changed_since"),
        ({"changed_since": "1.2"}, "changed_since"),
        ({"changed_since": "1.20261302.0"}, "changed_since"),  # month 13
        ({"changed_since": "1.2026120.0"}, "changed_since"),
        ({"changed_since": "1.20261202.0.1.2"}, "changed_since"),
        ({"changed_since": "1.20261202.99999999999999999999"}, "changed_since"),
        ({"changed_since": "99999999999999999999"}, "changed_since"),
        ({"changed_since": "9223372036854775808"}, "changed_since"),
        ({"changed_since": "١٢"}, "changed_since"),
        ({"changed_since": "1 "}, "changed_since"),
        ({"changed_since": "0", "page": "2"}, "page"),
        ({"changed_since": "0", "page_size": "0"}, "page_size"),
        ({"changed_since": "0", "page_size": "501"}, "page_size"),
        ({"changed_since": "0", "channel": "fax"}, "channel"),
    ],
)
def test_a_malformed_cursor_or_page_size_is_400_naming_it(engine, query, field):
    response = api_client(engine).get(URL, query)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"], body


def test_only_readers_of_content_may_follow_changes(db):
    assert api_client().get(URL, {"changed_since": "0"}).status_code == 401


# --- the schema -------------------------------------------------------------------------


def test_the_schema_declares_changed_since_and_the_page_with_tombstones(engine):
    schema = api_client(engine).get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/content"]["get"]
    assert operation["operationId"] == "content_list"
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["changed_since"]["schema"]["type"] == "string"
    assert {"page", "page_size", "channel", "brand", "market"} <= set(params)
    ok = operation["responses"]["200"]["content"]
    assert list(ok) == ["application/json"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ContentPage"}
    assert "400" in operation["responses"]
    page = schema["components"]["schemas"]["ContentPage"]
    assert set(page["properties"]) == PAGE_KEYS
    assert set(page["required"]) == PAGE_KEYS
    assert page["properties"]["results"]["items"] == {
        "$ref": "#/components/schemas/ApprovedContent"
    }
    tombstone_ref = page["properties"]["tombstones"]["items"]["$ref"]
    tombstone = schema["components"]["schemas"][tombstone_ref.rsplit("/", 1)[1]]
    assert set(tombstone["properties"]) == TOMBSTONE_KEYS
    status_schema = tombstone["properties"]["status"]
    enum_ref = status_schema.get("$ref") or status_schema["allOf"][0]["$ref"]
    enum = schema["components"]["schemas"][enum_ref.rsplit("/", 1)[1]]["enum"]
    assert {"withdrawn", "expired", "superseded", "deleted"} <= set(enum)
    assert "approved" not in enum
    assert schema["paths"]["/api/v1/content/changes"]["get"]["deprecated"] is True


def test_a_changes_page_costs_a_few_queries_whatever_its_size(
    clock, author, engine, django_assert_max_num_queries
):
    client = api_client(engine)
    for _ in range(3):
        approved(author)
    copy = Engine(client, page_size=500)
    copy.sync()
    for _ in range(20):
        approved(author)
    client.get(URL)  # warm the catalogue
    # token + user, roles, generation (filters), changes after the cursor, generation
    with django_assert_max_num_queries(5):
        body = client.get(URL, {"changed_since": copy.cursor, "page_size": 500}).json()
    assert len(body["results"]) == 20 and body["count"] == 23 and not body["has_more"]
