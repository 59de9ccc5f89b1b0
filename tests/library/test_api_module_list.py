"""The module list: filters, text search, pagination and a query count that does not grow."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from content_modules.library.models import Channel, Reference, TagKind, VersionStatus
from content_modules.library.services import module_edit
from tests.factories import api_client, force_status, make_module, tag


def ids(response) -> set[int]:
    assert response.status_code == 200, response.json()
    return {m["id"] for m in response.json()["results"]}


@pytest.mark.django_db
def test_filters_by_status_of_the_newest_version(author):
    draft = make_module(author)
    approved = make_module(author)
    force_status(approved, VersionStatus.APPROVED)

    client = api_client(author)

    assert ids(client.get("/api/v1/modules?status=draft")) == {draft.module_id}
    assert ids(client.get("/api/v1/modules?status=approved")) == {approved.module_id}


@pytest.mark.django_db
def test_filters_by_brand_market_and_channel(author):
    uk_email = make_module(author, channels=list(Channel.objects.filter(slug="email")))
    de_web = make_module(
        author, brand="neurolift", market="DE", channels=list(Channel.objects.filter(slug="web"))
    )
    client = api_client(author)

    assert ids(client.get("/api/v1/modules?brand=neurolift")) == {de_web.module_id}
    assert ids(client.get("/api/v1/modules?market=UK")) == {uk_email.module_id}
    assert ids(client.get("/api/v1/modules?channel=email")) == {uk_email.module_id}
    assert ids(client.get("/api/v1/modules?brand=cardiozen&channel=web")) == set()


@pytest.mark.django_db
def test_filters_by_every_tag_vocabulary(author):
    plain = make_module(author)
    tagged = make_module(
        author,
        message=tag(TagKind.MESSAGE, "safety"),
        tonality=tag(TagKind.TONALITY, "empathetic"),
        format=tag(TagKind.FORMAT, "infographic"),
        themes=[tag(TagKind.THEME, "quality-of-life"), tag(TagKind.THEME, "adherence")],
    )
    client = api_client(author)

    for query in (
        "message=safety",
        "tonality=empathetic",
        "format=infographic",
        "theme=quality-of-life",
        "theme=adherence&message=safety",
    ):
        assert ids(client.get(f"/api/v1/modules?{query}")) == {tagged.module_id}, query
    assert ids(client.get("/api/v1/modules?theme=outcomes")) == {plain.module_id}


@pytest.mark.django_db
def test_text_search_looks_at_the_newest_version(author):
    old = make_module(author, headline="Once about heartburn")
    force_status(old, VersionStatus.APPROVED)
    module_edit(actor=author, module=old.module, changes={"headline": "Now about stroke"})
    other = make_module(author, key_message="Stroke risk halved")
    make_module(author, body="Nothing relevant")
    client = api_client(author)

    assert ids(client.get("/api/v1/modules?q=stroke")) == {old.module_id, other.module_id}
    assert ids(client.get("/api/v1/modules?q=HEARTBURN")) == set()


@pytest.mark.django_db
def test_mine_lists_modules_the_caller_created_or_edited(author, other_author):
    mine = make_module(author)
    theirs = make_module(other_author)
    theirs.editors.add(author)
    make_module(other_author)

    response = api_client(author).get("/api/v1/modules?mine=true")

    assert ids(response) == {mine.module_id, theirs.module_id}


@pytest.mark.django_db
def test_list_is_paginated_newest_first(author):
    created = [make_module(author).module_id for _ in range(5)]

    page1 = api_client(author).get("/api/v1/modules?page_size=2").json()
    page3 = api_client(author).get("/api/v1/modules?page_size=2&page=3").json()

    assert page1["count"] == 5
    assert [m["id"] for m in page1["results"]] == sorted(created, reverse=True)[:2]
    assert page1["next"] and page1["previous"] is None
    assert [m["id"] for m in page3["results"]] == [min(created)]
    assert page3["next"] is None


@pytest.mark.django_db
def test_page_past_the_end_is_404(author):
    make_module(author)

    assert api_client(author).get("/api/v1/modules?page=9").status_code == 404


@pytest.mark.django_db
def test_list_items_carry_the_approved_version_number(author):
    approved = make_module(author)
    force_status(approved, VersionStatus.APPROVED)
    module_edit(actor=author, module=approved.module, changes={"title": "Next"})
    draft_only = make_module(author)

    results = {m["id"]: m for m in api_client(author).get("/api/v1/modules").json()["results"]}

    assert results[approved.module_id]["version"] == 2
    assert results[approved.module_id]["approved_version"] == 1
    assert results[draft_only.module_id]["approved_version"] is None


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/modules")
    assert response.status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_module_list_query_count_does_not_grow_with_modules(author, django_assert_max_num_queries):
    reference = Reference.objects.create(citation="Smith 2025", created_by=author)
    client = api_client(author)
    for _ in range(2):
        make_module(author, references=[reference])
    few = _list_queries(client)
    for _ in range(12):
        make_module(
            author,
            references=[reference],
            themes=[tag(TagKind.THEME, "outcomes"), tag(TagKind.THEME, "adherence")],
        )

    # token, roles, count, page, themes, channels, references, approved numbers:
    # a fixed budget whatever the page holds.
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/modules")

    assert len(response.json()["results"]) == 14
    assert _list_queries(client) == few


@pytest.mark.django_db
def test_module_detail_reads_in_a_fixed_number_of_queries(
    author, vocabulary, django_assert_max_num_queries
):
    version = make_module(
        author, themes=[tag(TagKind.THEME, "outcomes"), tag(TagKind.THEME, "adherence")]
    )
    client = api_client(author)

    # token, roles, module with its newest version, themes, channels, references, approved;
    # then the pre-review checks: brand policy, prohibited phrases, approved modules it
    # may resemble, claim links. None of them grows with the module's content.
    with django_assert_max_num_queries(10):
        response = client.get(f"/api/v1/modules/{version.module_id}")

    assert response.json()["tags"]["theme"] == ["adherence", "outcomes"]
