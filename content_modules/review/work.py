"""Work lists: where each person lands after signing in, an author's modules by state,
and each version's progress across the review roles."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Q

from content_modules.accounts.roles import ReviewRole, is_admin, is_author, is_reviewer
from content_modules.library.models import Module, VersionStatus

from .models import Review, ReviewStatus, ReviewTask, TaskStatus

ROLE_ORDER = {role: i for i, role in enumerate(ReviewRole.values)}
PROGRESS_WORDS = {
    TaskStatus.OPEN: "pending",
    TaskStatus.APPROVED: "approved",
    TaskStatus.CHANGES_REQUESTED: "changes requested",
    TaskStatus.REJECTED: "rejected",
    TaskStatus.CANCELLED: "cancelled",
}
# The sections of "my modules", in the order an author works them.
MY_SECTIONS = (
    (VersionStatus.CHANGES_REQUESTED, "Changes requested"),
    (VersionStatus.DRAFT, "Drafts"),
    (VersionStatus.IN_REVIEW, "In review"),
    (VersionStatus.REJECTED, "Rejected"),
)


def landing_url_name(user) -> str:
    """Where a user lands after signing in: reviewers (and admins) their queue,
    authors their modules, everyone else the library."""
    if is_reviewer(user) or is_admin(user):
        return "review:queue"
    if is_author(user):
        return "review:my_modules"
    return "library:module_list"


def role_progress(tasks) -> list[dict[str, str]]:
    """Each role's state on one round, in role order: ``{"role", "status", "words"}``."""
    return [
        {"role": t.role, "status": t.status, "words": PROGRESS_WORDS.get(t.status, t.status)}
        for t in sorted(tasks, key=lambda t: ROLE_ORDER.get(t.role, 99))
    ]


def progress_by_review(review_ids) -> dict[int, list[dict[str, str]]]:
    """``role_progress`` for many rounds in one query."""
    tasks: dict[int, list[ReviewTask]] = defaultdict(list)
    for task in ReviewTask.objects.filter(review_id__in=set(review_ids)).only(
        "id", "review_id", "role", "status"
    ):
        tasks[task.review_id].append(task)
    return {rid: role_progress(ts) for rid, ts in tasks.items()}


def my_modules(user) -> list[dict[str, Any]]:
    """The modules ``user`` created or edited, grouped by their latest version's state.

    Each row carries the latest version, its round's progress per role (in
    review), and for changes requested the number of comments handed back:
    text comments on the version plus the roles' decision comments.
    """
    modules = list(
        Module.objects.filter(Q(created_by=user) | Q(versions__editors=user))
        .filter(latest__status__in=[s for s, _ in MY_SECTIONS])
        .select_related("brand", "market", "latest")
        .annotate(
            text_comments=Count(
                "latest__annotations",
                filter=Q(latest__annotations__parent__isnull=True),
                distinct=True,
            )
        )
        .distinct()
        .order_by("-latest__status_changed_at", "-id")
    )
    latest_reviews: dict[int, Review] = {}
    for each in Review.objects.filter(
        version_id__in=[m.latest_id for m in modules if m.latest_id is not None]
    ).order_by("version_id", "-submitted_at", "-id"):
        latest_reviews.setdefault(each.version_id, each)
    progress = progress_by_review(r.pk for r in latest_reviews.values())
    role_comments = dict(
        ReviewTask.objects.filter(review_id__in=[r.pk for r in latest_reviews.values()])
        .exclude(comment="")
        .values("review_id")
        .annotate(n=Count("id"))
        .values_list("review_id", "n")
    )
    sections = []
    for status, label in MY_SECTIONS:
        rows = []
        for module in modules:
            version = module.latest
            if version is None or version.status != status:
                continue
            review = latest_reviews.get(version.pk)
            rows.append(
                {
                    "module": module,
                    "version": version,
                    "review": review,
                    "progress": progress.get(review.pk, []) if review else [],
                    "comments": module.text_comments
                    + (role_comments.get(review.pk, 0) if review else 0),
                    "round_open": review is not None and review.status == ReviewStatus.OPEN,
                }
            )
        sections.append({"status": status, "label": label, "rows": rows})
    return sections
