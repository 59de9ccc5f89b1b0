"""dashboard_metrics: cycle time per ISO week, first-pass rate per role, open tasks by age."""

from datetime import UTC, datetime, timedelta

from content_modules.library.models import ModuleVersion
from content_modules.library.services import module_edit
from content_modules.review.models import Review, ReviewTask
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
