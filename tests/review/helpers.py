"""Helpers for review tests: drive versions through the real actions."""

from __future__ import annotations

from content_modules.library.models import ModuleVersion
from content_modules.review.models import ReviewTask, TaskStatus
from content_modules.review.services import task_decide, version_submit
from tests.factories import PASSWORD


def submit(version: ModuleVersion, actor=None):
    """Submit the module of ``version`` as its author; return the review."""
    review = version_submit(actor=actor or version.created_by, module=version.module)
    version.refresh_from_db()
    return review


def task_for(version: ModuleVersion, role: str) -> ReviewTask:
    """The open (or latest) task of one role on a version."""
    return ReviewTask.objects.filter(version=version, role=role).order_by("-id").first()


def decide(version: ModuleVersion, role: str, user, decision: str = "approve", **kwargs):
    """Decide the role's task on the version as ``user`` with the right password."""
    kwargs.setdefault("password", PASSWORD)
    if decision != "approve":
        kwargs.setdefault("comment", "Please fix the claim.")
    return task_decide(actor=user, task=task_for(version, role), decision=decision, **kwargs)


def approve_all(version: ModuleVersion, medical, legal, regulatory) -> ModuleVersion:
    """Submit (if still a draft) and have every role approve; return the refreshed version."""
    version.refresh_from_db()
    if version.status == "draft":
        submit(version)
    refs = list(version.references.values_list("pk", flat=True))
    decide(version, "medical", medical, checked_reference_ids=refs)
    decide(version, "legal", legal)
    decide(version, "regulatory", regulatory)
    version.refresh_from_db()
    return version


def open_tasks(version: ModuleVersion) -> list[ReviewTask]:
    return list(ReviewTask.objects.filter(version=version, status=TaskStatus.OPEN))


ROLE_GROUP = {
    "medical": "medical_reviewer",
    "legal": "legal_reviewer",
    "regulatory": "regulatory_reviewer",
}


def finish_round(version: ModuleVersion, reviewers: dict | None = None, decision: str = "approve"):
    """Have every role still open on the version decide (``decision``), so its round closes.

    ``reviewers`` maps a role to the user who signs for it; other roles get a
    fresh reviewer. The medical reviewer checks every reference first.
    """
    from tests.factories import make_user

    reviewers = reviewers or {}
    for task in sorted(open_tasks(version), key=lambda t: t.role):
        user = reviewers.get(task.role) or make_user(ROLE_GROUP[task.role])
        refs = list(version.references.values_list("pk", flat=True))
        decide(version, task.role, user, decision, checked_reference_ids=refs)
    version.refresh_from_db()
    return version


def send_back(version: ModuleVersion, role: str, user, decision: str = "request_changes", **kw):
    """One role requests changes (or rejects); the others approve, closing the round."""
    reviewers = kw.pop("reviewers", None)
    signature = decide(version, role, user, decision, **kw)
    finish_round(version, reviewers)
    return signature
