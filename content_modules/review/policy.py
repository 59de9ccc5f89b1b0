"""Who may decide a review task: one policy, asked by the actions, the queue, the pages and the API.

Segregation of duties (DESIGN.md invariant 4) and the task rules are written
here once and answered two ways, as Wagtail's permission policies do
(``wagtail/permission_policies/base.py``): ``may_decide(user, task)`` for one
task and ``decidable_tasks(user)`` as a queryset for lists. A property test
(``tests/review/test_policy.py``) holds the two answers equal.

A user may decide a task when they are active, hold the task's review role,
the task is open, it is unassigned or assigned to them, they neither wrote
nor edited the version, and they have not signed the version in another
review role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db.models import Exists, OuterRef, Q, QuerySet

from content_modules.accounts.roles import REVIEW_ROLE_GROUP, ReviewRole, has_role, review_roles_of
from content_modules.errors import Conflict, DomainError, PermissionDenied
from content_modules.library.models import ModuleVersion

from .models import ReviewTask, Signature, TaskStatus


class RefusalCode(StrEnum):
    """Why a user may not decide a task (the first rule that fails, in this order)."""

    INACTIVE = "inactive"
    ROLE = "role"
    CLOSED = "closed"
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"
    AUTHORED = "authored"
    OTHER_ROLE = "other_role"


@dataclass(frozen=True)
class Refusal:
    """A refused decision: the rule that failed and the error an action raises for it."""

    code: RefusalCode
    message: str
    field: str

    def error(self) -> DomainError:
        if self.code == RefusalCode.CLOSED:
            return Conflict(self.message, field=self.field)
        return PermissionDenied(self.message, field=self.field)


def authors_of(version: ModuleVersion) -> set[int]:
    """User ids that wrote this version's content: its creator, editors and the module's creator.

    The module's creator counts even on later versions they did not edit,
    because the content carried over from their first draft is still theirs.
    """
    ids = {version.created_by_id, version.module.created_by_id}
    ids.update(version.editors.values_list("pk", flat=True))
    return ids


def holds_review_role(user, role: str) -> bool:
    """True when the user belongs to the group of this review role."""
    return has_role(user, REVIEW_ROLE_GROUP[ReviewRole(role)])


def roles_signed_by(version_id: int, user) -> set[str]:
    """The review roles in which ``user`` signed a decision on this version."""
    return set(
        Signature.objects.filter(
            version_id=version_id, signer_id=user.pk, task__isnull=False
        ).values_list("role", flat=True)
    )


class TaskDecisionPolicy:
    """The segregation-of-duties rule for deciding review tasks."""

    def refusal(
        self, user, task: ReviewTask, *, version: ModuleVersion | None = None, assigning=False
    ) -> Refusal | None:
        """The first rule that keeps ``user`` from deciding ``task``, or None when they may.

        ``version`` is the task's version when the caller already holds it
        (locked). ``assigning`` asks whether the task may be assigned to
        ``user``: the current assignment and the task's state are then not
        the question.
        """
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return Refusal(RefusalCode.INACTIVE, "This account may not sign decisions.", "user")
        if not holds_review_role(user, task.role):
            return Refusal(
                RefusalCode.ROLE, f"This is a {task.role} task; you do not hold that role.", "role"
            )
        if not assigning:
            if task.status != TaskStatus.OPEN:
                return Refusal(RefusalCode.CLOSED, f"This task is already {task.status}.", "status")
            if task.assignee_id is not None and task.assignee_id != user.pk:
                return Refusal(
                    RefusalCode.ASSIGNED_ELSEWHERE,
                    "This task is assigned to someone else.",
                    "assignee",
                )
        if version is None:
            version = ModuleVersion.objects.select_related("module").get(pk=task.version_id)
        if user.pk in authors_of(version):
            return Refusal(
                RefusalCode.AUTHORED,
                "You wrote or edited this version, so you may not review it.",
                "non_field_errors",
            )
        other_roles = roles_signed_by(version.pk, user) - {task.role}
        if other_roles:
            return Refusal(
                RefusalCode.OTHER_ROLE,
                f"You already signed this version as {', '.join(sorted(other_roles))}; "
                "one person fills at most one review role.",
                "non_field_errors",
            )
        return None

    def may_decide(self, user, task: ReviewTask, *, version: ModuleVersion | None = None) -> bool:
        """May ``user`` sign a decision on ``task`` now?"""
        return self.refusal(user, task, version=version) is None

    def check(self, user, task: ReviewTask, *, version: ModuleVersion | None = None) -> None:
        """Raise the refusal's error unless ``user`` may decide ``task``."""
        refusal = self.refusal(user, task, version=version)
        if refusal is not None:
            raise refusal.error()

    def decidable_tasks(self, user, queryset: QuerySet | None = None) -> QuerySet:
        """Every task ``user`` may decide now, as a queryset (the same rule as ``may_decide``)."""
        queryset = ReviewTask.objects.all() if queryset is None else queryset
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return queryset.none()
        editors = ModuleVersion.editors.through.objects.filter(
            moduleversion_id=OuterRef("version_id"), user_id=user.pk
        )
        signed_other_role = (
            Signature.objects.filter(
                version_id=OuterRef("version_id"), signer_id=user.pk, task__isnull=False
            )
            .exclude(role=OuterRef("role"))
            .values("pk")
        )
        return (
            queryset.filter(status=TaskStatus.OPEN, role__in=review_roles_of(user))
            .filter(Q(assignee__isnull=True) | Q(assignee_id=user.pk))
            .exclude(version__created_by_id=user.pk)
            .exclude(version__module__created_by_id=user.pk)
            .exclude(Exists(editors))
            .exclude(Exists(signed_other_role))
        )

    def decidable_among(self, user, tasks) -> set[int]:
        """The ids of ``tasks`` that ``user`` may decide now, in one query (a page of a list)."""
        ids = [task.pk for task in tasks]
        if not ids:
            return set()
        found = self.decidable_tasks(user, ReviewTask.objects.filter(pk__in=ids))
        return set(found.values_list("pk", flat=True))


decision_policy = TaskDecisionPolicy()
