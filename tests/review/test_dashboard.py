"""dashboard_metrics: cycle time per week and per role, rounds per approval, first-pass rate,
open tasks by age, the filters, the page and its CSV."""

from datetime import UTC, date, datetime, timedelta

from content_modules.library.models import ModuleVersion
from content_modules.library.services import module_edit
from content_modules.review.dashboard import DashboardFilters
from content_modules.review.models import Review, ReviewTask, Signature
from content_modules.review.queries import dashboard_metrics, percentile
from tests.factories import make_module

from .helpers import approve_all, decide, send_back, submit

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday in ISO week 47


def _approved_with_cycle(author, medical, legal, regulatory, hours, approved_at):
    version = approve_all(make_module(author), medical, legal, regulatory)
    Review.objects.filter(version=version).update(submitted_at=approved_at - timedelta(hours=hours))
    ModuleVersion.objects.filter(pk=version.pk).update(approved_at=approved_at)
    return version


def test_percentile_interpolates_between_ranks():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9.1
    assert percentile([], 50) is None


def test_cycle_time_median_and_p90_per_iso_week(author, medical, legal, regulatory):
    week47 = [10, 20, 30, 40]
    for hours in week47:
        _approved_with_cycle(author, medical, legal, regulatory, hours, NOW)
    _approved_with_cycle(author, medical, legal, regulatory, 5, NOW - timedelta(days=7))

    metrics = dashboard_metrics(now=NOW + timedelta(hours=1))

    assert metrics["cycle_time"] == [
        {"week": "2026-W46", "approvals": 1, "median_hours": 5.0, "p90_hours": 5.0},
        {
            "week": "2026-W47",
            "approvals": 4,
            "median_hours": percentile(week47, 50),
            "p90_hours": round(percentile(week47, 90), 2),
        },
    ]


def test_first_pass_rate_counts_first_round_decisions_per_role(author, medical, legal, regulatory):
    approve_all(make_module(author), medical, legal, regulatory)
    second = make_module(author)
    submit(second)
    decide(second, "medical", medical)
    send_back(second, "legal", legal, comment="Fix", reviewers={"regulatory": regulatory})
    v2 = module_edit(actor=author, module=second.module, changes={"title": "Fixed"})
    approve_all(v2, medical, legal, regulatory)  # round 2: not first pass

    rates = {r["role"]: r for r in dashboard_metrics()["first_pass"]}

    assert rates["medical"] == {"role": "medical", "decided": 2, "approved": 2, "rate": 1.0}
    assert rates["legal"] == {"role": "legal", "decided": 2, "approved": 1, "rate": 0.5}
    # Every role finishes its round: regulatory reviewed the sent-back round 1 too.
    assert rates["regulatory"] == {"role": "regulatory", "decided": 2, "approved": 2, "rate": 1.0}


def test_open_tasks_by_role_and_age_bucket(author, legal):
    fresh = make_module(author)
    submit(fresh)
    old = make_module(author)
    submit(old)
    now = ReviewTask.objects.order_by("-created_at").first().created_at
    ReviewTask.objects.filter(version=old).update(
        created_at=now - timedelta(days=6), due_at=now - timedelta(days=1)
    )
    decide(fresh, "legal", legal)

    metrics = dashboard_metrics(now=now + timedelta(minutes=5))["open_tasks"]

    assert metrics["buckets"] == ["0-1d", "1-3d", "3-5d", "5d+"]
    assert metrics["by_role"]["legal"] == {"0-1d": 0, "1-3d": 0, "3-5d": 0, "5d+": 1}
    assert metrics["by_role"]["medical"] == {"0-1d": 1, "1-3d": 0, "3-5d": 0, "5d+": 1}
    assert metrics["overdue"] == {"medical": 1, "legal": 1, "regulatory": 1}


# --- per-role cycle time, rounds per approval, filters and the CSV ---------------------------

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # Monday of ISO week 47


def _backdate(version, submitted_at, hours_by_role):
    """Put a decided round at known times: submitted at T, each role deciding after its hours."""
    review = Review.objects.filter(version=version).order_by("-id").first()
    closed = submitted_at
    for task in ReviewTask.objects.filter(review=review):
        decided = submitted_at + timedelta(hours=hours_by_role[task.role])
        closed = max(closed, decided)
        ReviewTask.objects.filter(pk=task.pk).update(created_at=submitted_at, decided_at=decided)
        Signature.objects.filter(task=task).update(signed_at=decided)
    Review.objects.filter(pk=review.pk).update(submitted_at=submitted_at, closed_at=closed)
    fields = {"submitted_at": submitted_at}
    version.refresh_from_db()
    if version.status == "approved":
        fields["approved_at"] = closed
    ModuleVersion.objects.filter(pk=version.pk).update(**fields)


def test_cycle_time_per_role_is_exact_from_the_task_timestamps(author, medical, legal, regulatory):
    first = approve_all(make_module(author), medical, legal, regulatory)
    _backdate(first, T0, {"medical": 10, "legal": 50, "regulatory": 20})
    second = approve_all(make_module(author), medical, legal, regulatory)
    _backdate(second, T0, {"medical": 20, "legal": 90, "regulatory": 30})

    rows = {r["role"]: r for r in dashboard_metrics(now=NOW)["cycle_by_role"]}

    assert rows["medical"] == {
        "role": "medical",
        "label": "Medical",
        "decisions": 2,
        "median_hours": 15.0,
        "mean_hours": 15.0,
        "p90_hours": 19.0,
        "slowest": False,
    }
    assert (rows["legal"]["median_hours"], rows["legal"]["p90_hours"]) == (70.0, 86.0)
    assert rows["legal"]["slowest"] and not rows["regulatory"]["slowest"]
    assert rows["regulatory"]["median_hours"] == 25.0


def test_rounds_per_approval_counts_the_rounds_since_the_previous_approval(
    author, medical, legal, regulatory
):
    # Module A: approved first time (1 round).
    approve_all(make_module(author), medical, legal, regulatory)
    # Module B: version 1 sent back, version 2 approved (2 rounds).
    b1 = make_module(author)
    submit(b1)
    send_back(b1, "legal", legal, reviewers={"medical": medical, "regulatory": regulatory})
    b2 = module_edit(actor=author, module=b1.module, changes={"title": "Fixed"})
    approve_all(b2, medical, legal, regulatory)
    # Then B is edited again and version 3 approved at once: 1 round for that approval.
    b3 = module_edit(actor=author, module=b1.module, changes={"title": "Refreshed"})
    approve_all(b3, medical, legal, regulatory)

    rounds = dashboard_metrics()["rounds"]

    assert rounds == {
        "approvals": 3,
        "rounds": 4,
        "mean": 1.33,
        "distribution": {"1": 2, "2": 1, "3+": 0},
    }


def test_rounds_restart_per_version(author, medical, legal, regulatory):
    v1 = make_module(author)
    first = submit(v1)
    send_back(v1, "medical", medical, reviewers={"legal": legal, "regulatory": regulatory})
    v2 = module_edit(actor=author, module=v1.module, changes={"title": "Fixed"})

    second = submit(v2)

    assert (first.version.number, first.round) == (1, 1)
    assert (second.version.number, second.round) == (2, 1)


def test_filters_narrow_every_figure_by_brand_market_and_dates(author, medical, legal, regulatory):
    uk = approve_all(make_module(author), medical, legal, regulatory)
    _backdate(uk, T0, {"medical": 10, "legal": 40, "regulatory": 20})
    de = approve_all(
        make_module(author, brand="neurolift", market="DE"), medical, legal, regulatory
    )
    _backdate(de, T0 - timedelta(days=21), {"medical": 5, "legal": 5, "regulatory": 5})

    def figures(**kw):
        m = dashboard_metrics(now=NOW, filters=DashboardFilters(**kw))
        legal_row = next(r for r in m["cycle_by_role"] if r["role"] == "legal")
        return m["rounds"]["approvals"], legal_row["decisions"], legal_row["median_hours"]

    assert figures() == (2, 2, 22.5)
    assert figures(brand="cardiozen") == (1, 1, 40.0)
    assert figures(market="DE") == (1, 1, 5.0)
    assert figures(since=date(2026, 11, 1)) == (1, 1, 40.0)
    assert figures(until=date(2026, 11, 1)) == (1, 1, 5.0)
    assert figures(brand="cardiozen", market="DE") == (0, 0, 0.0)


def test_dashboard_page_filters_and_links_the_csv_with_the_same_filters(
    client, author, medical, legal, regulatory
):
    approve_all(make_module(author), medical, legal, regulatory)
    client.force_login(legal)

    page = client.get("/review/dashboard/", {"brand": "cardiozen", "since": "2026-01-01"})

    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/review/dashboard.csv?brand=cardiozen&amp;since=2026-01-01"' in html
    assert 'id="cycle-by-role"' in html and 'id="rounds-per-approval"' in html
    csv = client.get("/review/dashboard.csv", {"brand": "cardiozen", "since": "2026-01-01"})
    assert csv.status_code == 200 and csv["Content-Type"] == "text/csv"
    lines = csv.content.decode().splitlines()
    assert lines[0] == "section,key,measure,value"
    assert "filter,brand,value,cardiozen" in lines
    assert "rounds_per_approval,all,approvals,1" in lines
    assert "cycle_time_role,legal,decisions,1" in lines


def test_dashboard_refuses_bad_filters_by_name(client, legal):
    client.force_login(legal)

    page = client.get("/review/dashboard/", {"since": "2026-12-01", "until": "2026-11-01"})
    csv = client.get("/review/dashboard.csv", {"since": "not-a-date"})

    assert (
        page.status_code == 200
        and "The end date is before the start date." in page.content.decode()
    )
    assert csv.status_code == 400 and "since" in csv.content.decode()


def test_dashboard_and_its_csv_are_for_reviewers_and_admins(client, author):
    client.force_login(author)

    assert client.get("/review/dashboard/").status_code == 403
    assert client.get("/review/dashboard.csv").status_code == 403
