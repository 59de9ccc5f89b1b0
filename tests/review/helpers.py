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
