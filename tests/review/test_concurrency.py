"""Concurrent decisions, edits and submissions on PostgreSQL with real threads.

Each scenario starts its contenders at the same instant (a barrier) and
repeats a few rounds; whatever the interleaving, the outcome must be one of
the consistent ones and the audit chain must verify.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_verify
from content_modules.errors import Conflict
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from content_modules.review.models import Review, ReviewTask, TaskStatus
from content_modules.review.services import task_decide, version_submit
from tests.factories import PASSWORD, make_module, make_user
from tests.services import require_postgres

from . import invariants
from .helpers import decide, submit, task_for

ROUNDS = 4

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    require_postgres()


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in parallel threads released at once; answer results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # the test inspects what each contender met
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a contender hung (deadlock?)"
    return results


def test_two_reviewers_deciding_the_last_two_tasks_approve_exactly_once(
    author, medical, legal, regulatory
):
    for _ in range(ROUNDS):
        version = make_module(author)
        submit(version)
        decide(version, "medical", medical)
        legal_task, regulatory_task = task_for(version, "legal"), task_for(version, "regulatory")

        results = run_together(
            lambda t=legal_task: task_decide(
                actor=legal, task=t, decision="approve", password=PASSWORD
            ),
            lambda t=regulatory_task: task_decide(
                actor=regulatory, task=t, decision="approve", password=PASSWORD
            ),
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        version.refresh_from_db()
        assert version.status == VersionStatus.APPROVED
        assert (
            AuditEntry.objects.filter(action="version.approved", version_id=version.pk).count() == 1
        )
        assert {t.status for t in ReviewTask.objects.filter(version=version)} == {
            TaskStatus.APPROVED
        }
    invariants.check_all()


def test_approve_and_request_changes_at_once_close_the_round_once(
    author, medical, legal, regulatory
):
    for _ in range(ROUNDS):
        version = make_module(author)
        submit(version)
        decide(version, "medical", medical)
        legal_task, regulatory_task = task_for(version, "legal"), task_for(version, "regulatory")

        results = run_together(
            lambda t=legal_task: task_decide(
                actor=legal, task=t, decision="approve", password=PASSWORD
            ),
            lambda t=regulatory_task: task_decide(
                actor=regulatory,
                task=t,
                decision="request_changes",
                comment="No",
                password=PASSWORD,
            ),
        )

        # Every role finishes its round: both decisions count, whichever came first,
        # and the last one closes the round exactly once.
        assert not [r for r in results if isinstance(r, Exception)], results
        version.refresh_from_db()
        assert version.status == VersionStatus.CHANGES_REQUESTED
        statuses = dict(ReviewTask.objects.filter(version=version).values_list("role", "status"))
        assert statuses == {
            "medical": TaskStatus.APPROVED,
            "legal": TaskStatus.APPROVED,
            "regulatory": TaskStatus.CHANGES_REQUESTED,
        }
        closes = AuditEntry.objects.filter(
            action="version.changes_requested", version_id=version.pk
        )
        assert closes.count() == 1
        assert not AuditEntry.objects.filter(action="version.approved", version_id=version.pk)
    invariants.check_all()


def test_the_same_task_decided_twice_at_once_is_decided_once(author, legal):
    second_legal = make_user("legal_reviewer")
    for _ in range(ROUNDS):
        version = make_module(author)
        submit(version)
        task = task_for(version, "legal")

        results = run_together(
            lambda t=task: task_decide(actor=legal, task=t, decision="approve", password=PASSWORD),
            lambda t=task: task_decide(
                actor=second_legal, task=t, decision="approve", password=PASSWORD
            ),
        )

        assert sum(isinstance(r, Conflict) for r in results) == 1, results
        assert task.signatures.count() == 1
    invariants.check_all()


def test_an_author_editing_while_a_reviewer_decides_leaves_a_consistent_state(
    author, medical, legal, regulatory
):
    for _ in range(ROUNDS):
        version = make_module(author)
        submit(version)
        decide(version, "medical", medical)
        decide(version, "legal", legal)
        last = task_for(version, "regulatory")

        results = run_together(
            lambda t=last: task_decide(
                actor=regulatory, task=t, decision="approve", password=PASSWORD
            ),
            lambda v=version: module_edit(actor=author, module=v.module, changes={"title": "New"}),
        )

        decision, edit = results
        assert not isinstance(decision, Exception), decision
        version.refresh_from_db()
        assert version.status == VersionStatus.APPROVED
        assert version.title != "New"  # the approved content never changed
        if isinstance(edit, Conflict):
            # The edit came first and was refused: the version was still in review.
            assert version.module.versions.count() == 1
        else:
            # The approval came first; the edit started the next draft.
            assert isinstance(edit, ModuleVersion), edit
            assert (edit.number, edit.status, edit.title) == (2, VersionStatus.DRAFT, "New")
        assert version.module.approved_version() == version
    invariants.check_all()


def test_two_submits_at_once_open_one_review(author):
    for _ in range(ROUNDS):
        version = make_module(author)

        results = run_together(
            lambda v=version: version_submit(actor=author, module=v.module),
            lambda v=version: version_submit(actor=author, module=v.module),
        )

        assert sum(isinstance(r, Conflict) for r in results) == 1, results
        assert sum(isinstance(r, Review) for r in results) == 1
        assert Review.objects.filter(version=version).count() == 1
        assert ReviewTask.objects.filter(version=version).count() == 3
    assert audit_verify().ok
    invariants.check_all()
