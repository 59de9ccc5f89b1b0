"""The audit trail in the browser: words, filters, pages, the CSV with the same filters, access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from content_modules.accounts.services import SignatureRefused
from content_modules.audit.models import AuditEntry
from content_modules.review import trail_views
from tests.factories import make_module, make_user

from .helpers import approve_all, decide, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(author, medical, legal, regulatory):
    """Version 1 approved after one failed signing attempt by the medical reviewer."""
    version = make_module(author)
    submit(version)
    with pytest.raises(SignatureRefused):
        decide(version, "medical", medical, password="wrong")
    return approve_all(version, medical, legal, regulatory)


def _rows(response):
    return [(r["entry"].action, r["words"]) for r in response.context["rows"]]


def test_module_trail_reads_in_words_newest_first_with_failed_signing(client, approved, author):
    client.force_login(author)

    response = client.get(f"/review/modules/{approved.module_id}/audit/")

    html = response.content.decode()
    assert response.status_code == 200
    rows = _rows(response)
    assert rows[0][0] == "version.approved"
    assert rows[-1][0] == "module.created"
    assert (
        "Version 1 signed by Mia Medical as medical reviewer — signature meaning: approved" in html
    )
    assert "Failed signing attempt by Mia Medical" in html and "wrong password" in html
    assert 'class="audit-failed"' in html
    # No raw ids in the words
    assert "version_id" not in html and "content_hash" not in html


def test_filters_by_user_action_and_date_and_the_csv_link_keeps_them(
    client, approved, admin_user, medical
):
    client.force_login(admin_user)
    today = timezone.now().date().isoformat()
    query = {"user": medical.username, "action": "signature.failed", "since": today, "until": today}

    response = client.get(f"/review/modules/{approved.module_id}/audit/", query)

    assert [a for a, _ in _rows(response)] == ["signature.failed"]
    csv_url = response.context["csv_url"]
    assert csv_url.startswith(f"/review/modules/{approved.module_id}/audit.csv?")
    assert f"user={medical.username}" in csv_url and "action=signature.failed" in csv_url
    csv = b"".join(client.get(csv_url).streaming_content).decode().splitlines()
    assert csv[0].startswith("seq,occurred_at_utc,actor_id")
    assert len(csv) == 2 and ",signature.failed," in csv[1]
    # A window that ends before today leaves nothing
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    empty = client.get(f"/review/modules/{approved.module_id}/audit/", {"until": yesterday})
    assert (
        empty.context["page"].paginator.count == 0 and 'id="audit-empty"' in empty.content.decode()
    )


def test_system_trail_is_paginated_and_its_csv_filters_alike(
    client, approved, admin_user, legal, monkeypatch
):
    monkeypatch.setattr(trail_views, "AUDIT_PAGE_SIZE", 10)
    for _ in range(2):
        approve_all(
            make_module(make_user("author")),
            make_user("medical_reviewer"),
            legal,
            make_user("regulatory_reviewer"),
        )
    total = AuditEntry.objects.count()
    assert total > 20
    client.force_login(admin_user)

    first = client.get("/review/audit/")
    last = client.get("/review/audit/", {"page": first.context["page"].paginator.num_pages})

    assert first.status_code == 200 and len(first.context["rows"]) == 10
    assert first.context["page"].paginator.count == total
    assert first.context["page"].paginator.num_pages == (total + 9) // 10
    assert last.context["rows"][-1]["entry"].action == "module.created"
    assert 'href="/review/audit.csv"' in first.content.decode()
    by_legal = client.get("/review/audit/", {"user": legal.username})
    csv = b"".join(client.get(by_legal.context["csv_url"]).streaming_content).decode()
    assert len(csv.splitlines()) - 1 == by_legal.context["page"].paginator.count > 0


def test_bad_filters_are_named_on_the_page_and_refused_by_the_csv(client, approved, admin_user):
    client.force_login(admin_user)

    page = client.get("/review/audit/", {"user": "nobody-here", "action": "version.aproved"})
    csv = client.get("/review/audit.csv", {"since": "2026-13-40"})

    html = page.content.decode()
    assert page.status_code == 200
    assert "No user has this username." in html and "action" in html
    assert page.context["page"].paginator.count == AuditEntry.objects.count()
    assert csv.status_code == 400 and "since" in csv.content.decode()


def test_who_may_read_which_trail(client, approved, author, legal, engine, admin_user):
    module_url = f"/review/modules/{approved.module_id}/audit/"
    for user, system, module in [
        (admin_user, 200, 200),
        (legal, 403, 200),
        (author, 403, 200),
        (engine, 403, 403),
    ]:
        client.force_login(user)
        assert client.get("/review/audit/").status_code == system, user
        assert client.get("/review/audit.csv").status_code == system, user
        assert client.get(module_url).status_code == module, user
    client.logout()
    assert client.get("/review/audit/").status_code == 302
    assert client.get("/review/modules/999999/audit/").status_code == 302
    client.force_login(admin_user)
    assert client.get("/review/modules/999999/audit/").status_code == 404
