"""Content performance: rollups equal direct counts, late and deleted events, unused and
fatigued content, CSV, the page, and bad input."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.analytics import rollups, services
from content_modules.analytics.models import ContentDaily, SegmentDaily
from content_modules.library.models import TagKind, VersionStatus
from tests import factories

TODAY = services.today_utc()
COUNTED = {"delivered": 0, "opened": 1, "clicked": 2}
URL = "/api/v1/analytics/content"
new_event = factories.engagement_event


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


@pytest.fixture
def world(author):
    """Three approved modules with distinct tags (one with two themes), HCPs in two
    microsegments, and 600 random events over the last 70 days on two channels."""
    t = factories.tag
    a = factories.make_module(author, title="Alpha")
    b = factories.make_module(
        author,
        title="Beta",
        message=t(TagKind.MESSAGE, "safety"),
        tonality=t(TagKind.TONALITY, "empathetic"),
        format=t(TagKind.FORMAT, "infographic"),
        themes=[t(TagKind.THEME, "outcomes"), t(TagKind.THEME, "adherence")],
    )
    c = factories.make_module(author, brand="neurolift", market="DE", title="Gamma")
    for version in (a, b, c):
        factories.force_status(version, VersionStatus.APPROVED)
    hcps = [
        HCP.objects.create(external_id=f"H{i}", microsegment="ms-1" if i % 3 else "ms-2")
        for i in range(12)
    ]
    rng = random.Random(7)
    kinds = ["delivered"] * 5 + ["opened"] * 3 + ["clicked", "read"]
    events = [
        new_event(
            rng.choice(hcps),
            rng.choice((a, b, c)),
            rng.choice(kinds),
            at(TODAY - timedelta(days=rng.randrange(70)), rng.randrange(24), rng.randrange(60)),
            channel=rng.choice(("email", "web")),
        )
        for _ in range(600)
    ]
    EngagementEvent.objects.bulk_create(events)  # one multi-row INSERT: statement triggers
    return {"versions": (a, b, c), "hcps": hcps}


def direct(by: str, since: date, until: date, **filters) -> dict[str, list[int]]:
    """The answer counted straight from the events, in Python."""
    by = services.SYNONYMS.get(by, by)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    events = EngagementEvent.objects.select_related(
        "hcp", "module__brand", "module__market", "version__message", "version__tonality"
    ).prefetch_related("version__themes")
    for e in events:
        day = e.occurred_at.astimezone(UTC).date()
        if e.type not in COUNTED or not since <= day <= until:
            continue
        if filters.get("brand") and e.module.brand.slug != filters["brand"]:
            continue
        if filters.get("channel") and e.channel != filters["channel"]:
            continue
        if filters.get("microsegment") and e.hcp.microsegment != filters["microsegment"]:
            continue
        if by == "module":
            keys = [str(e.module_id)]
        elif by == "channel":
            keys = [e.channel]
        elif by == "segment":
            keys = [e.hcp.microsegment]
        elif by == "week":
            keys = [(day - timedelta(days=day.weekday())).isoformat()]
        elif by == "theme":
            keys = [th.slug for th in e.version.themes.all()]
        else:
            keys = [getattr(e.version, by).slug]
        for key in keys:
            counts[key][COUNTED[e.type]] += 1
    return dict(counts)


def answered(by: str, since: date, until: date, **filters) -> dict[str, list[int]]:
    rows = services.content_performance(
        by=by, since=since, until=until, filters=services.Filters(**filters)
    )
    return {r.key: [r.deliveries, r.opens, r.clicks] for r in rows}


def rollup_equals_events() -> bool:
    """The whole rollup against a full recount (both tables)."""
    by_version: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_segment: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in EngagementEvent.objects.select_related("hcp"):
        if e.type in COUNTED:
            day = e.occurred_at.astimezone(UTC).date()
            key = (day, e.module_id, e.version_id or 0, e.channel, e.hcp.microsegment)
            by_version[key][COUNTED[e.type]] += 1
            by_segment[(day, e.hcp.microsegment, e.channel)][COUNTED[e.type]] += 1
    stored = {
        (r.day, r.module_id, r.version_key, r.channel, r.microsegment): [
            r.deliveries,
            r.opens,
            r.clicks,
        ]
        for r in ContentDaily.objects.all()
    }
    stored_segments = {
        (r.day, r.microsegment, r.channel): [r.deliveries, r.opens, r.clicks]
        for r in SegmentDaily.objects.all()
    }
    return stored == dict(by_version) and stored_segments == dict(by_segment)


# --- exact counts -------------------------------------------------------------------------


@pytest.mark.parametrize("by", [*services.GROUPINGS, "microsegment"])
def test_counts_per_grouping_equal_a_direct_count_of_the_events(world, by):
    since, until = TODAY - timedelta(days=45), TODAY - timedelta(days=3)

    assert answered(by, since, until) == direct(by, since, until)
    assert rollup_equals_events()


@pytest.mark.parametrize(
    "by,filters",
    [
        ("module", {"brand": "cardiozen"}),
        ("theme", {"channel": "web"}),
        ("message", {"microsegment": "ms-2"}),
        ("segment", {"brand": "neurolift"}),
        ("week", {"microsegment": "ms-1", "channel": "email"}),
    ],
)
def test_filtered_counts_equal_a_direct_count(world, by, filters):
    since, until = TODAY - timedelta(days=69), TODAY

    assert answered(by, since, until, **filters) == direct(by, since, until, **filters)


def test_a_module_with_two_themes_counts_in_both_theme_rows(world):
    _, beta, _ = world["versions"]
    rows = {
        r.key: r
        for r in services.content_performance(
            by="theme", since=TODAY - timedelta(days=80), until=TODAY
        )
    }
    beta_deliveries = EngagementEvent.objects.filter(version=beta, type="delivered").count()

    assert rows["adherence"].deliveries == beta_deliveries
    assert rows["outcomes"].deliveries >= beta_deliveries


def test_rates_carry_a_wilson_interval(world):
    rows = services.content_performance(by="channel", since=TODAY - timedelta(days=80), until=TODAY)

    for row in rows:
        lo, hi = row.click_rate_ci95
        assert lo <= row.click_rate <= hi
        assert row.as_dict()["click_rate"] == round(row.clicks / row.deliveries, 6)
    assert services.wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert services.wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert services.wilson(3, 0) is None


def test_a_late_event_lands_in_its_own_day_and_changes_the_answer(world, engine):
    alpha = world["versions"][0]
    late_day = TODAY - timedelta(days=21)
    before = answered("module", late_day, late_day).get(str(alpha.module_id), [0, 0, 0])
    body = {
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "hcp": "H1",
                "module": alpha.module_id,
                "type": "clicked",
                "occurred_at": at(late_day, 8).isoformat(),
                "channel": "email",
            }
        ]
    }

    response = factories.api_client(engine).post("/api/v1/events", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    after = answered("module", late_day, late_day)[str(alpha.module_id)]
    assert after == [before[0], before[1], before[2] + 1]
    assert ContentDaily.objects.filter(day=late_day, module_id=alpha.module_id).exists()
    assert rollup_equals_events()


def test_deleting_events_is_reflected_when_an_hcp_is_erased(world):
    since, until = TODAY - timedelta(days=80), TODAY
    gone = world["hcps"][0]
    assert EngagementEvent.objects.filter(hcp=gone).exists()

    gone.delete()

    for by in ("module", "segment", "theme"):
        assert answered(by, since, until) == direct(by, since, until)
    assert rollup_equals_events()  # rows that fell to zero are gone too


def test_deleting_every_event_leaves_no_rollup_rows(world):
    EngagementEvent.objects.all().delete()

    assert not ContentDaily.objects.exists()
    assert not SegmentDaily.objects.exists()
    assert (
        services.content_performance(by="module", since=TODAY - timedelta(days=80), until=TODAY)
        == []
    )


def test_relabelling_hcps_moves_their_counts_to_the_new_microsegment(world):
    since, until = TODAY - timedelta(days=80), TODAY
    moved = [h.id for h in world["hcps"][:5]]

    HCP.objects.filter(id__in=moved).update(microsegment="ms-3")  # as an engagement fit does

    assert answered("segment", since, until) == direct("segment", since, until)
    assert "ms-3" in answered("segment", since, until)
    for by, filters in (("module", {"microsegment": "ms-3"}), ("segment", {"brand": "cardiozen"})):
        assert answered(by, since, until, **filters) == direct(by, since, until, **filters)
    assert rollup_equals_events()


def test_a_bulk_relabel_recounts_the_rollups_once_and_they_stay_exact(world):
    since, until = TODAY - timedelta(days=80), TODAY
    hcps = world["hcps"]

    with rollups.deferred():  # as an engagement fit relabels
        HCP.objects.filter(id__in=[h.id for h in hcps[:6]]).update(microsegment="ms-4")
        HCP.objects.filter(id__in=[h.id for h in hcps[6:]]).update(microsegment="ms-5")

    assert set(answered("segment", since, until)) == {"ms-4", "ms-5"}
    assert answered("segment", since, until) == direct("segment", since, until)
    filters = {"microsegment": "ms-4"}
    assert answered("module", since, until, **filters) == direct("module", since, until, **filters)
    assert rollup_equals_events()
    # and outside the block a relabel moves the rows as before
    HCP.objects.filter(id=hcps[0].id).update(microsegment="ms-5")
    assert rollup_equals_events()


def test_a_fit_writes_only_changed_hcps_and_the_rollups_stay_exact_either_way(world):
    import numpy as np

    from content_modules.engagement.training import relabel_hcps

    ids = np.array([h.id for h in world["hcps"]])
    keys = ["ms-7", "ms-8"]
    everyone = np.arange(len(ids)) % 2

    # Every HCP changes: the rollups are recounted once
    assert relabel_hcps(ids, everyone, keys) == len(ids)
    assert rollup_equals_events()
    assert set(answered("segment", TODAY - timedelta(days=80), TODAY)) == set(keys)
    # One HCP changes (1 of 12, under the recount share): its rows are moved
    one = everyone.copy()
    one[0] = 1 - one[0]
    assert relabel_hcps(ids, one, keys) == 1
    assert HCP.objects.get(id=ids[0]).microsegment == keys[one[0]]
    assert rollup_equals_events()
    # Nothing changes: nothing is written
    assert relabel_hcps(ids, one, keys) == 0


@pytest.mark.django_db(transaction=True)
def test_after_a_committed_bulk_relabel_both_rollups_are_vacuumed(world):
    from django.db import connection

    from tests import services as needs

    needs.require_postgres()

    with rollups.deferred():
        HCP.objects.filter(id__in=[h.id for h in world["hcps"]]).update(microsegment="ms-6")

    assert rollup_equals_events()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, last_vacuum IS NOT NULL, n_dead_tup FROM pg_stat_user_tables"
            " WHERE relname IN ('analytics_contentdaily', 'analytics_segmentdaily')"
        )
        stats = {name: (vacuumed, dead) for name, vacuumed, dead in cursor.fetchall()}
    assert stats == {
        "analytics_contentdaily": (True, 0),
        "analytics_segmentdaily": (True, 0),
    }


def test_an_updated_event_moves_between_rows(world):
    event = EngagementEvent.objects.filter(type="delivered").first()
    other = world["versions"][2]

    EngagementEvent.objects.filter(pk=event.pk).update(
        module_id=other.module_id, version=other, occurred_at=at(TODAY - timedelta(days=90))
    )
    EngagementEvent.objects.filter(version=world["versions"][1]).update(version=None)

    assert rollup_equals_events()


def test_since_and_until_are_inclusive_utc_days(world):
    alpha = world["versions"][0]
    hcp = world["hcps"][1]
    day = TODAY - timedelta(days=100)  # before the world's events
    EngagementEvent.objects.bulk_create(
        [
            new_event(hcp, alpha, "delivered", at(day - timedelta(days=1), 23, 59)),
            new_event(hcp, alpha, "delivered", at(day, 0, 0)),
            new_event(hcp, alpha, "delivered", at(day + timedelta(days=1), 23, 59)),
            new_event(hcp, alpha, "delivered", at(day + timedelta(days=2), 0, 0)),
        ]
    )

    assert answered("module", day, day + timedelta(days=1)) == {str(alpha.module_id): [2, 0, 0]}
    assert answered("module", day, day) == {str(alpha.module_id): [1, 0, 0]}


# --- unused and fatigued ------------------------------------------------------------------


def test_unused_lists_approved_modules_without_deliveries_in_the_window(author):
    hcp = HCP.objects.create(external_id="U1")
    delivered = factories.make_module(author, title="Delivered")
    idle = factories.make_module(author, title="Idle")
    long_ago = factories.make_module(author, title="Long ago")
    rare = factories.make_module(author, title="Rare")
    draft = factories.make_module(author, title="Draft")
    expired = factories.make_module(author, title="Expired")
    for version in (delivered, idle, long_ago, rare):
        factories.force_status(version, VersionStatus.APPROVED)
    factories.force_status(expired, VersionStatus.APPROVED, expires_on=TODAY - timedelta(days=1))
    EngagementEvent.objects.bulk_create(
        [
            *(
                new_event(hcp, delivered, "delivered", at(TODAY - timedelta(days=d)))
                for d in (1, 2, 3)
            ),
            new_event(hcp, long_ago, "delivered", at(TODAY - timedelta(days=120))),
            *(new_event(hcp, rare, "delivered", at(TODAY - timedelta(days=5))) for _ in range(2)),
            new_event(hcp, idle, "opened", at(TODAY - timedelta(days=1))),
        ]
    )
    client = factories.api_client(author)

    never = client.get("/api/v1/analytics/unused", {"days": 90}).json()
    rarely = client.get("/api/v1/analytics/unused", {"days": 90, "rarely": 3}).json()

    assert {r["title"] for r in never["results"]} == {"Idle", "Long ago"}
    long_ago_row = next(r for r in never["results"] if r["title"] == "Long ago")
    assert long_ago_row["last_delivered"] == (TODAY - timedelta(days=120)).isoformat()
    assert {r["title"]: r["deliveries"] for r in rarely["results"]} == {
        "Idle": 0,
        "Long ago": 0,
        "Rare": 2,
    }
    assert draft.module_id not in {r["module"] for r in rarely["results"]}


def test_fatigued_flags_a_module_whose_recent_click_rate_fell(author):
    hcp = HCP.objects.create(external_id="F1")
    tired = factories.make_module(author, title="Tired")
    steady = factories.make_module(author, title="Steady")
    for version in (tired, steady):
        factories.force_status(version, VersionStatus.APPROVED)
    events = []
    for version, earlier_clicks, recent_clicks in ((tired, 30, 5), (steady, 20, 18)):
        for period_day, clicks in ((60, earlier_clicks), (7, recent_clicks)):
            when = at(TODAY - timedelta(days=period_day))
            events += [new_event(hcp, version, "delivered", when) for _ in range(100)]
            events += [new_event(hcp, version, "clicked", when) for _ in range(clicks)]
    EngagementEvent.objects.bulk_create(events)

    found = services.fatigued_modules()
    answer = factories.api_client(author).get("/api/v1/analytics/fatigued").json()

    assert [f.module_id for f in found] == [tired.module_id]
    assert found[0].earlier_rate == 0.3 and found[0].recent_rate == 0.05
    assert [r["module"] for r in answer["results"]] == [tired.module_id]


# --- CSV, page, access ----------------------------------------------------------------------


def test_csv_export_has_a_header_and_the_same_rows(world, author):
    client = factories.api_client(author)
    query = {"by": "theme", "since": (TODAY - timedelta(days=60)).isoformat()}

    rows = client.get(URL, query).json()["rows"]
    for response in (client.get(URL, {**query, "format": "csv"}), client.get(URL + ".csv", query)):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(response.content.decode())))
        assert lines[0] == services.CSV_HEADER
        assert [(r[0], int(r[3]), int(r[4]), int(r[5])) for r in lines[1:]] == [
            (r["key"], r["deliveries"], r["opens"], r["clicks"]) for r in rows
        ]


def test_the_json_answer_has_the_contract_fields(world, author):
    response = factories.api_client(author).get(URL, {"by": "module"})

    assert response.status_code == 200
    row = response.json()["rows"][0]
    assert set(row) >= {"key", "deliveries", "opens", "clicks", "open_rate", "click_rate"}
    assert len(row["click_rate_ci95"]) == 2 and row["module"] == int(row["key"])


def test_the_page_renders_for_an_author_with_rows_and_retire_lists(world, client, author):
    client.force_login(author)

    response = client.get("/analytics/", {"by": "theme"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="analytics-rows"' in html and "Adherence" in html
    assert "/api/v1/analytics/content.csv?by=theme" in html
    assert 'id="unused-fatigued"' in html
    assert "style=" not in html.split("<main", 1)[-1]


def test_the_page_links_unused_modules_to_their_library_page(client, author):
    idle = factories.make_module(author, title="Idle one")
    factories.force_status(idle, VersionStatus.APPROVED)
    client.force_login(author)

    html = client.get("/analytics/").content.decode()

    assert f'href="/library/modules/{idle.module_id}/"' in html


@pytest.mark.parametrize("role", ["engine", None])
def test_the_page_is_refused_for_the_engine_and_a_user_without_role(db, client, role):
    client.force_login(factories.make_user(role))

    assert client.get("/analytics/").status_code == 403


def test_the_page_shows_bad_input_with_a_400(client, author):
    client.force_login(author)

    response = client.get("/analytics/", {"since": "2026-10-02", "until": "2026-10-01"})

    assert response.status_code == 400
    assert 'id="analytics-errors"' in response.content.decode()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,query,field",
    [
        (URL, {"by": "module", "since": "2026-10-02", "until": "2026-10-01"}, "since"),
        (URL, {"by": "colour"}, "by"),
        (URL, {"by": "segments"}, "by"),
        (URL, {"by": "module", "since": "2026-13-01"}, "since"),
        (URL, {"by": "module", "until": "yesterday"}, "until"),
        (URL, {"by": "module", "since": "1990-01-01", "until": "2026-01-01"}, "since"),
        (URL, {"by": "module", "format": "xlsx"}, "format"),
        (URL + ".csv", {"by": "nope"}, "by"),
        ("/api/v1/analytics/unused", {"days": "0"}, "days"),
        ("/api/v1/analytics/unused", {"days": "100000"}, "days"),
        ("/api/v1/analytics/unused", {"days": "ninety"}, "days"),
        ("/api/v1/analytics/unused", {"rarely": "0"}, "rarely"),
        ("/api/v1/analytics/fatigued", {"brand": "not a slug!"}, "brand"),
    ],
)
def test_bad_input_answers_400_naming_the_field(author, path, query, field):
    response = factories.api_client(author).get(path, query)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == [field]
