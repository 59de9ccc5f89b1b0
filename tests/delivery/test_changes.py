"""GET /api/v1/content/changes: an engine replaying the feed holds exactly the content list."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from content_modules.delivery.models import ContentChange
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.services import module_withdraw, versions_expire
from tests.factories import PASSWORD, api_client, force_status, make_module
from tests.review.helpers import approve_all
from tests.services import require_postgres

from .helpers import approved

pytestmark = pytest.mark.django_db

URL = "/api/v1/content/changes"


class LocalCopy:
    """What an engine keeps, applying the feed by the rules in delivery/changes.py."""

    def __init__(self) -> None:
        self.by_module: dict[int, dict] = {}
        self.cursor = "0"
        self.pages = 0

    def sync(self, client, limit: int = 2) -> None:
        while True:
            response = client.get(URL, {"changed_since": self.cursor, "limit": limit})
            assert response.status_code == 200, response.content
            body = response.json()
            self.pages += 1
            for change in body["changes"]:
                held = self.by_module.get(change["module"])
                if change["type"] == "approved":
                    self.by_module[change["module"]] = change
                elif held is not None and held["version_id"] == change["version_id"]:
                    del self.by_module[change["module"]]
            self.cursor = body["cursor"]
            if not body["has_more"]:
                assert body["next"] is None
                return
            assert body["next"].endswith(f"changed_since={body['cursor']}&limit={limit}") or (
                f"changed_since={body['cursor']}" in body["next"]
            )

    def served(self) -> dict[int, tuple]:
        today = timezone.localdate().isoformat()
        return {
            m: (c["version_id"], c["content"])
            for m, c in self.by_module.items()
            if c["approval_expires_on"] is None or c["approval_expires_on"] >= today
        }


def content_list(client) -> dict[int, tuple]:
    body = client.get("/api/v1/content", {"page_size": 500}).json()
    return {r["module"]: (r["version_id"], r["content"]) for r in body["results"]}


def test_replaying_changes_reaches_exactly_the_content_list(
    author, engine, medical, legal, regulatory
):
    client = api_client(engine)
    live = LocalCopy()  # follows along, a few changes at a time

    # Approvals through the review workflow
    a, b, c, d = (approve_all(make_module(author), medical, legal, regulatory) for _ in range(4))
    live.sync(client)
    assert live.served() == content_list(client) and len(live.served()) == 4

    # A new version of a: its approval supersedes the old one
    draft = module_edit(actor=author, module=a.module, changes={"headline": "Updated headline"})
    a2 = approve_all(draft, medical, legal, regulatory)
    # b is withdrawn; c expires (the daily job, run as of the day after its date)
    module_withdraw(actor=medical, module=b.module, reason="Claim outdated", password=PASSWORD)
    ModuleVersion.objects.filter(pk=c.pk).update(expires_on=timezone.localdate() + timedelta(1))
    versions_expire(today=timezone.localdate() + timedelta(days=2))
    # d passes its date without the job having run: still 'approved', no longer listed
    ModuleVersion.objects.filter(pk=d.pk).update(
        expires_on=timezone.localdate() - timedelta(days=1)
    )
    # A draft, a rejected version and a forced state never appear
    make_module(author)
    e = approved(author)
    force_status(e, VersionStatus.DRAFT)

    live.sync(client)
    fresh = LocalCopy()
    fresh.sync(client, limit=3)

    expected = content_list(client)
    assert set(expected) == {a.module_id}
    assert expected[a.module_id][0] == a2.pk
    assert expected[a.module_id][1]["headline"] == "Updated headline"
    assert live.served() == expected
    assert fresh.served() == expected
    assert fresh.pages > 1  # the small page size made it page
    kinds = set(ContentChange.objects.values_list("kind", flat=True))
    assert {"approved", "superseded", "withdrawn", "expired", "draft"} <= kinds
    # Nothing new: the same cursor again answers no change
    again = client.get(URL, {"changed_since": live.cursor}).json()
    assert again == {"changes": [], "cursor": live.cursor, "has_more": False, "next": None}


def test_tombstones_name_the_version_and_carry_no_content(author, engine, medical):
    client = api_client(engine)
    v = approved(author)
    cursor = client.get(URL, {"changed_since": "0"}).json()["cursor"]
    module_withdraw(actor=medical, module=v.module, reason="Recalled", password=PASSWORD)
    body = client.get(URL, {"changed_since": cursor}).json()
    assert [(c["type"], c["module"], c["version_id"]) for c in body["changes"]] == [
        ("withdrawn", v.module_id, v.pk)
    ]
    assert body["changes"][0]["content"] is None and body["changes"][0]["changed_at"]


def test_a_rolled_back_change_never_appears(author, engine):
    client = api_client(engine)
    v = approved(author)
    cursor = client.get(URL, {"changed_since": "0"}).json()["cursor"]
    with pytest.raises(RuntimeError), transaction.atomic():
        force_status(v, VersionStatus.WITHDRAWN)
        raise RuntimeError("roll back")
    assert client.get(URL, {"changed_since": cursor}).json()["changes"] == []


def test_deleting_an_approved_version_is_a_tombstone(author, engine):
    client = api_client(engine)
    v = approved(author)
    cursor = client.get(URL, {"changed_since": "0"}).json()["cursor"]
    v.module.delete()
    changes = client.get(URL, {"changed_since": cursor}).json()["changes"]
    assert [(c["type"], c["version_id"]) for c in changes] == [("deleted", v.pk)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "changed_since"),
        ({"changed_since": "2026-11-01T00:00:00Z"}, "changed_since"),
        ({"changed_since": "-1"}, "changed_since"),
        ({"changed_since": "1.2"}, "changed_since"),
        ({"changed_since": "99999999999999999999"}, "changed_since"),
        ({"changed_since": "١٢"}, "changed_since"),
        ({"changed_since": "0", "limit": "0"}, "limit"),
        ({"changed_since": "0", "limit": "1001"}, "limit"),
        ({"changed_since": "0", "limit": "²"}, "limit"),
    ],
)
def test_a_malformed_cursor_or_limit_is_400_naming_it(engine, query, field):
    response = api_client(engine).get(URL, query)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_only_readers_of_content_may_follow_the_feed(db):
    assert api_client().get(URL, {"changed_since": "0"}).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_change_never_commits_behind_the_cursor(author, engine):
    """Two transactions change approved content at once: the second draws its change id
    only after the first has committed, so a reader never moves past an id that a running
    transaction could still commit."""
    require_postgres()
    client = api_client(engine)
    first, second = approved(author), approved(author)
    for v in (first, second):
        force_status(v, VersionStatus.DRAFT)
    copy = LocalCopy()
    copy.sync(client)
    logged, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow_approval() -> None:
        try:
            with transaction.atomic():
                force_status(first, VersionStatus.APPROVED)  # its change id is drawn now
                logged.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def other_approval() -> None:
        try:
            force_status(second, VersionStatus.APPROVED)
            done.set()
        finally:
            connection.close()

    slow = threading.Thread(target=slow_approval)
    slow.start()
    assert logged.wait(timeout=30)
    other = threading.Thread(target=other_approval)
    other.start()
    try:
        # The second waits for the first (it cannot draw an id ahead of it) ...
        assert not done.wait(timeout=1.0)
        copy.sync(client)
        assert copy.served() == {}
    finally:
        release.set()
        slow.join(timeout=30)
        other.join(timeout=30)
    assert done.is_set()
    copy.sync(client)
    assert copy.served() == content_list(client)
    assert set(copy.served()) == {first.module_id, second.module_id}
    rows = ContentChange.objects.filter(kind="approved", version_id__in=[first.pk, second.pk])
    latest = list(rows.order_by("-id").values_list("version_id", flat=True)[:2])
    assert latest == [second.pk, first.pk]  # ids in commit order
