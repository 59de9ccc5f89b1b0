"""Review actions: submit, decide (with e-signature), reassign, withdraw, annotate, expire.

Every action checks permission and state, locks the rows it transitions
(module, then version, then tasks: one order everywhere, so concurrent
actions queue instead of deadlocking), writes its audit entries in the same
transaction and announces changes to the served set after commit.

Passwords are checked before the transaction opens: a failed signature
attempt must stay recorded (it counts toward the lockout) while everything
else the action would have written is never started.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content_modules.accounts.roles import (
    ReviewRole,
    Role,
    can_see_unapproved,
    has_role,
    is_admin,
    is_reviewer,
)
from content_modules.accounts.services import SignatureRefused, verify_password_for_signature
from content_modules.audit.actions import AuditAction
from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_record
from content_modules.errors import Conflict, InvalidInput, PermissionDenied
from content_modules.library.claims import find_anchor
from content_modules.library.models import Module, ModuleVersion, Reference, VersionStatus
from content_modules.library.quickcheck import submission_refusal
from content_modules.library.services import can_edit_module
from content_modules.library.signals import announce_delivery_change

from . import notifications
from .models import (
    TASK_DECIDED,
    Annotation,
    AnnotationField,
    Decision,
    ExpiryNotice,
    ReferenceCheck,
    Review,
    ReviewStatus,
    ReviewTask,
    Signature,
    SignatureMeaning,
    TaskStatus,
)
from .policy import RefusalCode, authors_of, decision_policy, holds_review_role

__all__ = ["authors_of", "holds_review_role"]  # re-exported: callers check authorship here

DECISION_OUTCOME = {
    Decision.APPROVE: (TaskStatus.APPROVED, SignatureMeaning.APPROVED),
    Decision.REQUEST_CHANGES: (TaskStatus.CHANGES_REQUESTED, SignatureMeaning.CHANGES_REQUESTED),
    Decision.REJECT: (TaskStatus.REJECTED, SignatureMeaning.REJECTED),
}

# Who may pull approved content from delivery: the people answerable for it
# being safe and compliant (medical and regulatory reviewers) and admins. Legal
# reviewers and authors ask one of them; the engine never may.
WITHDRAW_ROLES = (Role.ADMIN, Role.MEDICAL, Role.REGULATORY)


# --- helpers -------------------------------------------------------------------------------


def add_business_days(start: datetime, days: int) -> datetime:
    """``start`` moved forward by ``days`` working days (Saturdays and Sundays skipped)."""
    result = start
    remaining = days
    while remaining > 0:
        result += timedelta(days=1)
        if result.weekday() < 5:
            remaining -= 1
    return result


def printed_name(user) -> str:
    """The signer's name as the signature manifestation prints it."""
    return user.get_full_name().strip() or user.get_username()


def _lock_version(version_id: int) -> tuple[Module, ModuleVersion]:
    module_id = ModuleVersion.objects.values_list("module_id", flat=True).get(pk=version_id)
    module = Module.objects.select_for_update().get(pk=module_id)
    version = (
        ModuleVersion.objects.select_for_update(of=("self",))
        .select_related("module__brand", "module__market", "module__created_by", "created_by")
        .get(pk=version_id)
    )
    return module, version


_WEBHOOK_EVENTS = (VersionStatus.APPROVED, VersionStatus.WITHDRAWN, VersionStatus.EXPIRED)


def _transition(*, actor, version: ModuleVersion, to: str, now: datetime, **data) -> None:
    """Move a locked version to another status and audit it as ``version.<to>``."""
    from_status = version.status
    version.status = to
    version.status_changed_at = now
    fields = ["status", "status_changed_at"]
    if to == VersionStatus.APPROVED:
        version.approved_at = now
        fields.append("approved_at")
    version.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=AuditAction(f"version.{to}"),
        obj=version,
        module_id=version.module_id,
        version_id=version.pk,
        data={"version": version.number, "from": from_status, "to": to, **data},
    )
    if to in _WEBHOOK_EVENTS:
        from content_modules.webhooks import outbox

        # The outbox rows commit with this transition or not at all.
        outbox.record(
            f"version.{to}",
            {
                "module": version.module_id,
                "version": version.number,
                "version_id": version.pk,
                "status": to,
                "from": from_status,
                **({"reason": data["reason"]} if "reason" in data else {}),
            },
        )


def _task_data(task: ReviewTask) -> dict:
    return {"task": task.pk, "role": task.role, "review": task.review_id}


# --- submit --------------------------------------------------------------------------------


@transaction.atomic
def version_submit(*, actor, module: Module) -> Review:
    """Send the module's draft to MLR review: one task per required role, in parallel."""
    module = (
        Module.objects.select_for_update(of=("self",)).select_related("brand").get(pk=module.pk)
    )
    if not can_edit_module(actor, module):
        raise PermissionDenied("Only the module's authors or an admin may submit it.")
    version = (
        ModuleVersion.objects.select_for_update(of=("self",))
        .select_related("module__brand", "module__created_by", "created_by")
        .filter(module=module)
        .order_by("-number")
        .first()
    )
    if version is None or version.status != VersionStatus.DRAFT:
        state = version.status if version else "missing"
        raise Conflict(
            f"Only a draft can be submitted; the latest version is {state}.", field="status"
        )
    # A brand may refuse a draft with pre-review findings (library/quickcheck.py).
    refusal = submission_refusal(version)
    if refusal is not None:
        raise InvalidInput(refusal, field="checks")
    now = timezone.now()
    version.submitted_at = now
    version.status = VersionStatus.IN_REVIEW
    version.status_changed_at = now
    version.save(update_fields=["status", "status_changed_at", "submitted_at"])

    # Rounds are numbered per version: the first review of version 2 is its round 1.
    round_number = Review.objects.filter(version=version).count() + 1
    review = Review.objects.create(
        version=version, round=round_number, submitted_by=actor, submitted_at=now
    )
    due_at = add_business_days(now, settings.REVIEW_DUE_BUSINESS_DAYS)
    roles = module.brand.required_review_roles()
    for role in roles:
        ReviewRole(role)  # a misconfigured brand fails loudly here, not in a queue later
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(review=review, version=version, role=role, created_at=now, due_at=due_at)
            for role in roles
        ]
    )
    audit_record(
        actor=actor,
        action=AuditAction.VERSION_SUBMITTED,
        obj=version,
        module_id=module.pk,
        version_id=version.pk,
        data={
            "version": version.number,
            "from": VersionStatus.DRAFT,
            "to": VersionStatus.IN_REVIEW,
            "review": review.pk,
            "round": round_number,
            "roles": roles,
            "due_at": due_at,
            "content_hash": version.content_hash,
        },
    )
    _carry_annotations(actor=actor, version=version)
    return review


# --- failed signatures ---------------------------------------------------------------------


def _verify_signer(
    *, actor, password: str | None, request, intent: str, version_of, task=None
) -> None:
    """Re-authenticate the signer; a refusal is audited (and, repeated, reported) first.

    21 CFR Part 11 §11.300(d): attempts at misuse are detected and reported.
    The entry is written in its own transaction before the refusal is raised,
    so nothing the failed action would have written rolls it back, and the
    audit trail (append-only, chained) keeps it for good.
    """
    try:
        verify_password_for_signature(user=actor, password=password, request=request)
    except SignatureRefused as exc:
        # The version is read only on failure: a good signature costs no extra query.
        _signature_failed(actor=actor, exc=exc, intent=intent, version=version_of(), task=task)
        raise


def _signature_failed(*, actor, exc: SignatureRefused, intent: str, version, task) -> None:
    since = timezone.now() - timedelta(seconds=settings.LOCKOUT_SECONDS)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.SIGNATURE_FAILED,
            obj=task if task is not None else version,
            module_id=version.module_id if version is not None else None,
            version_id=version.pk if version is not None else None,
            data={
                "intent": intent,
                "reason": exc.reason,
                "client_ip": exc.ip,
                "task": task.pk if task is not None else None,
                "role": task.role if task is not None else None,
                "version": version.number if version is not None else None,
            },
        )
        recent = AuditEntry.objects.filter(
            action=AuditAction.SIGNATURE_FAILED, actor=actor, occurred_at__gte=since
        ).count()
    every = settings.SIGNATURE_FAILURE_ALERT_AFTER
    if every > 0 and recent % every == 0:
        where = notifications.version_label(version) if version is not None else "a module"
        notifications.send_on_commit(
            subject=f"Repeated failed e-signatures by {printed_name(actor)}",
            body=(
                f"{printed_name(actor)} ({actor.get_username()}) has failed to sign "
                f"{recent} times in the last {settings.LOCKOUT_SECONDS // 60} minutes.\n"
                f"Last attempt: {intent} on {where}, from {exc.ip or 'an unknown address'}, "
                f"reason: {exc.reason}.\n\n"
                "Every attempt is in the audit trail (action signature.failed)."
            ),
            recipients=notifications.admins(),
        )


# --- decide --------------------------------------------------------------------------------


def task_decide(
    *,
    actor,
    task: ReviewTask,
    decision: str,
    comment: str = "",
    password: str | None,
    checked_reference_ids: list[int] | None = None,
    request=None,
) -> Signature:
    """Decide one review task and sign the decision electronically.

    The password is checked first and outside the transaction (a failure is
    recorded and counts toward the lockout; nothing else is written).
    """
    if decision not in Decision.values:
        raise InvalidInput(
            f"Decision must be one of {', '.join(Decision.values)}.", field="decision"
        )
    comment = (comment or "").strip()
    if decision != Decision.APPROVE and not comment:
        raise InvalidInput(
            "Say what must change (or why it is rejected) in a comment.", field="comment"
        )
    _verify_signer(
        actor=actor,
        password=password,
        request=request,
        intent=decision,
        version_of=lambda: ModuleVersion.objects.get(pk=task.version_id),
        task=task,
    )
    with transaction.atomic():
        return _decide_locked(
            actor=actor,
            task_id=task.pk,
            decision=Decision(decision),
            comment=comment,
            checked_reference_ids=checked_reference_ids or [],
        )


def _decide_locked(
    *, actor, task_id: int, decision: Decision, comment: str, checked_reference_ids: list[int]
) -> Signature:
    version_id = ReviewTask.objects.values_list("version_id", flat=True).get(pk=task_id)
    module, version = _lock_version(version_id)
    task = (
        ReviewTask.objects.select_for_update(of=("self",)).select_related("review").get(pk=task_id)
    )

    decision_policy.check(actor, task, version=version)

    now = timezone.now()
    _record_reference_checks(actor=actor, task=task, version=version, ids=checked_reference_ids)
    if decision == Decision.APPROVE and task.role == ReviewRole.MEDICAL:
        cited = set(version.references.values_list("pk", flat=True))
        checked = set(
            ReferenceCheck.objects.filter(task=task, reference_id__in=cited).values_list(
                "reference_id", flat=True
            )
        )
        missing = sorted(cited - checked)
        if missing:
            raise InvalidInput(
                "Every reference must be checked before medical approval; not checked: "
                + ", ".join(str(m) for m in missing),
                field="checked_references",
            )

    task_status, meaning = DECISION_OUTCOME[decision]
    content_hash = version.compute_content_hash()
    signature = Signature.objects.create(
        version=version,
        task=task,
        signer=actor,
        printed_name=printed_name(actor),
        role=task.role,
        meaning=meaning,
        signed_at=now,
        content_hash=content_hash,
        reason=comment,
    )
    task.status = task_status
    task.decided_by = actor
    task.decided_at = now
    task.comment = comment
    task.save(update_fields=["status", "decided_by", "decided_at", "comment"])
    audit_record(
        actor=actor,
        action=AuditAction.SIGNATURE_APPLIED,
        obj=signature,
        module_id=module.pk,
        version_id=version.pk,
        data={
            "printed_name": signature.printed_name,
            "meaning": meaning,
            "role": task.role,
            "signed_at": now,
            "content_hash": content_hash,
            "task": task.pk,
        },
    )
    audit_record(
        actor=actor,
        action=AuditAction.TASK_DECIDED,
        obj=task,
        module_id=module.pk,
        version_id=version.pk,
        data={
            **_task_data(task),
            "decision": decision,
            "comment": comment,
            "signature": signature.pk,
        },
    )

    _close_round_if_decided(actor=actor, review=task.review, version=version, now=now)
    return signature


def _record_reference_checks(*, actor, task: ReviewTask, version: ModuleVersion, ids) -> None:
    if not ids:
        return
    try:
        wanted = {int(i) for i in ids}
    except (TypeError, ValueError):
        raise InvalidInput("References are given by their ids.", field="checked_references")
    cited = set(version.references.filter(pk__in=wanted).values_list("pk", flat=True))
    unknown = sorted(wanted - cited)
    if unknown:
        raise InvalidInput(
            f"Not references of this version: {', '.join(map(str, unknown))}.",
            field="checked_references",
        )
    already = set(
        ReferenceCheck.objects.filter(task=task, reference_id__in=cited).values_list(
            "reference_id", flat=True
        )
    )
    for reference_id in sorted(cited - already):
        check = ReferenceCheck.objects.create(
            version=version, task=task, reference_id=reference_id, checked_by=actor
        )
        audit_record(
            actor=actor,
            action=AuditAction.REFERENCE_CHECKED,
            obj=check,
            module_id=version.module_id,
            version_id=version.pk,
            data={"reference": reference_id, "task": task.pk},
        )


def _add_newly_required_tasks(*, review: Review, version: ModuleVersion, tasks, now) -> bool:
    """Open a task for every role the brand started requiring during the review."""
    required = set(version.module.brand.required_review_roles())
    missing = sorted(required - {t.role for t in tasks})
    for role in missing:
        # The brand's roles changed during the review: the new role must review too.
        tasks.append(
            ReviewTask.objects.create(
                review=review,
                version=version,
                role=role,
                created_at=now,
                due_at=add_business_days(now, settings.REVIEW_DUE_BUSINESS_DAYS),
            )
        )
        audit_record(
            actor=None,
            action=AuditAction.TASK_ADDED,
            object_type="review.reviewtask",
            object_id=review.pk,
            module_id=version.module_id,
            version_id=version.pk,
            data={"review": review.pk, "role": role, "reason": "role newly required by brand"},
        )
    return bool(missing)


def round_outcome(statuses) -> str:
    """A round's outcome from its tasks' decisions (DESIGN.md, lifecycle).

    Rejected when any role rejects, approved when every role approves,
    otherwise changes requested.
    """
    statuses = set(statuses)
    if TaskStatus.REJECTED in statuses:
        return ReviewStatus.REJECTED
    if statuses and statuses <= {TaskStatus.APPROVED}:
        return ReviewStatus.APPROVED
    return ReviewStatus.CHANGES_REQUESTED


def _close_round_if_decided(*, actor, review: Review, version: ModuleVersion, now) -> str | None:
    """Close the round once every required role has decided; return its outcome, or None.

    Every role finishes its round: a request for changes or a rejection no
    longer cancels the other roles' tasks, so the author gets every role's
    feedback on the round together.
    """
    tasks = list(ReviewTask.objects.select_for_update().filter(review=review).order_by("role"))
    if _add_newly_required_tasks(review=review, version=version, tasks=tasks, now=now):
        return None
    if any(t.status == TaskStatus.OPEN for t in tasks):
        return None
    outcome = round_outcome(t.status for t in tasks)
    if outcome == ReviewStatus.APPROVED:
        return (
            outcome
            if _approve(actor=actor, review=review, version=version, tasks=tasks, now=now)
            else None
        )
    _close_round(actor=actor, review=review, version=version, tasks=tasks, outcome=outcome, now=now)
    return outcome


def _approve(*, actor, review: Review, version: ModuleVersion, tasks, now) -> bool:
    """Approve the version when every role's approval was signed on its current content hash."""
    current_hash = version.compute_content_hash()
    latest_approval: dict[int, Signature] = {}
    for sig in Signature.objects.filter(task__in=tasks, meaning=SignatureMeaning.APPROVED):
        task_id = sig.task_id
        if task_id is None:  # filtered by task above; a withdrawal's signature has none
            continue
        if task_id not in latest_approval or sig.pk > latest_approval[task_id].pk:
            latest_approval[task_id] = sig
    stale = [
        t
        for t in tasks
        if t.pk not in latest_approval or latest_approval[t.pk].content_hash != current_hash
    ]
    if stale:
        # Content changed after these approvals were signed: they are void and
        # the roles must sign again on what the version says now (invariant 3).
        for t in stale:
            t.status = TaskStatus.OPEN
            t.decided_by = None
            t.decided_at = None
            t.save(update_fields=["status", "decided_by", "decided_at"])
            audit_record(
                actor=None,
                action=AuditAction.TASK_REOPENED,
                obj=t,
                module_id=version.module_id,
                version_id=version.pk,
                data={
                    **_task_data(t),
                    "reason": "approval signed on a different content hash",
                    "signed_hash": getattr(latest_approval.get(t.pk), "content_hash", None),
                    "current_hash": current_hash,
                },
            )
        return False

    # Supersede first, then approve: the database allows one approved version per module.
    previous = ModuleVersion.objects.select_for_update().filter(
        module_id=version.module_id, status=VersionStatus.APPROVED
    )
    for old in previous.exclude(pk=version.pk):
        _transition(
            actor=actor,
            version=old,
            to=VersionStatus.SUPERSEDED,
            now=now,
            superseded_by=version.pk,
        )
    review.status = ReviewStatus.APPROVED
    review.closed_at = now
    review.save(update_fields=["status", "closed_at"])
    _transition(
        actor=actor,
        version=version,
        to=VersionStatus.APPROVED,
        now=now,
        content_hash=current_hash,
        signatures=sorted(s.pk for s in latest_approval.values()),
        review=review.pk,
    )
    announce_delivery_change(version.module_id)
    notifications.send_on_commit(
        subject=f"Approved: {notifications.version_label(version)}",
        body=f"Every review role approved {notifications.version_label(version)}. "
        "It is now served to approved channels.",
        recipients=notifications.owners_of(version),
    )
    return True


OUTCOME_VERSION_STATUS: dict[str, str] = {
    ReviewStatus.CHANGES_REQUESTED: VersionStatus.CHANGES_REQUESTED,
    ReviewStatus.REJECTED: VersionStatus.REJECTED,
}
OUTCOME_VERB: dict[str, str] = {
    ReviewStatus.CHANGES_REQUESTED: "Changes requested",
    ReviewStatus.REJECTED: "Rejected",
}


def _close_round(
    *,
    actor,
    review: Review,
    version: ModuleVersion,
    tasks,
    outcome: str,
    now,
    recall_reason: str = "",
    cancelled=(),
) -> None:
    """End a round that did not approve: the version goes back to its authors with every
    role's decision and comments in one notification."""
    review.status = ReviewStatus.RECALLED if recall_reason else outcome
    review.closed_at = now
    fields = ["status", "closed_at"]
    if recall_reason:
        review.closed_by = actor
        review.close_reason = recall_reason
        fields += ["closed_by", "close_reason"]
    review.save(update_fields=fields)
    to = OUTCOME_VERSION_STATUS[outcome]
    decided = [t for t in tasks if t.status in TASK_DECIDED]
    _transition(
        actor=actor,
        version=version,
        to=to,
        now=now,
        review=review.pk,
        round=review.round,
        decisions={t.role: t.status for t in decided},
        comments={t.role: t.comment for t in decided if t.comment},
        **({"recalled": True, "reason": recall_reason} if recall_reason else {}),
        **({"cancelled_tasks": [t.pk for t in cancelled]} if cancelled else {}),
    )
    notifications.send_on_commit(
        subject=f"{OUTCOME_VERB[outcome]}: {notifications.version_label(version)}",
        body=notifications.round_feedback(
            version=version,
            review=review,
            tasks=tasks,
            verb=OUTCOME_VERB[outcome],
            recalled_by=printed_name(actor) if recall_reason else "",
            reason=recall_reason,
        ),
        recipients=notifications.owners_of(version),
    )


# --- recall --------------------------------------------------------------------------------


def may_recall(user, module: Module) -> bool:
    """Admins and the module's authors may recall its open review."""
    return is_admin(user) or can_edit_module(user, module)


@transaction.atomic
def review_recall(*, actor, module: Module, reason: str) -> Review:
    """Close the module's open review round before every role decided, with a reason.

    The open tasks are cancelled; the version goes back to its authors as
    rejected when a role already rejected it, otherwise as changes requested,
    with the decisions and comments given so far.
    """
    if not may_recall(actor, module):
        raise PermissionDenied("Only the module's authors or an admin may recall its review.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give the reason for the recall.", field="reason")
    version_id = (
        Review.objects.filter(version__module=module, status=ReviewStatus.OPEN)
        .values_list("version_id", flat=True)
        .first()
    )
    if version_id is None:
        raise Conflict("This module has no review in progress to recall.", field="status")
    module, version = _lock_version(version_id)
    review = (
        Review.objects.select_for_update().filter(version=version, status=ReviewStatus.OPEN).first()
    )
    if review is None or version.status != VersionStatus.IN_REVIEW:
        raise Conflict("This module has no review in progress to recall.", field="status")
    now = timezone.now()
    tasks = list(ReviewTask.objects.select_for_update().filter(review=review).order_by("role"))
    cancelled = []
    for task in tasks:
        if task.status != TaskStatus.OPEN:
            continue
        task.status = TaskStatus.CANCELLED
        task.decided_at = now
        task.save(update_fields=["status", "decided_at"])
        cancelled.append(task)
        audit_record(
            actor=actor,
            action=AuditAction.TASK_CANCELLED,
            obj=task,
            module_id=module.pk,
            version_id=version.pk,
            data={**_task_data(task), "because": "recalled", "reason": reason},
        )
    outcome = (
        ReviewStatus.REJECTED
        if any(t.status == TaskStatus.REJECTED for t in tasks)
        else ReviewStatus.CHANGES_REQUESTED
    )
    audit_record(
        actor=actor,
        action=AuditAction.REVIEW_RECALLED,
        obj=review,
        module_id=module.pk,
        version_id=version.pk,
        data={
            "review": review.pk,
            "round": review.round,
            "reason": reason,
            "outcome": outcome,
            "decided": {t.role: t.status for t in tasks if t.status in TASK_DECIDED},
            "cancelled_tasks": [t.pk for t in cancelled],
        },
    )
    _close_round(
        actor=actor,
        review=review,
        version=version,
        tasks=tasks,
        outcome=outcome,
        now=now,
        recall_reason=reason,
        cancelled=cancelled,
    )
    # The reviewers still working on it are told they can stop.
    notifications.send_on_commit(
        subject=f"Review recalled: {notifications.version_label(version)}",
        body=f"{printed_name(actor)} recalled this review; your task is cancelled.\n\n"
        f"Reason: {reason}\n",
        recipients=[t.assignee for t in cancelled if t.assignee_id],
    )
    return review


# --- reference checks, reassignment ------------------------------------------------------


@transaction.atomic
def reference_check_mark(*, actor, task: ReviewTask, reference: Reference) -> ReferenceCheck:
    """Record that the reviewer of an open task checked one reference of its version."""
    task = (
        ReviewTask.objects.select_for_update(of=("self",)).select_related("version").get(pk=task.pk)
    )
    decision_policy.check(actor, task, version=task.version)
    if not task.version.references.filter(pk=reference.pk).exists():
        raise InvalidInput("This reference is not cited by the version.", field="reference")
    check = ReferenceCheck.objects.filter(task=task, reference=reference).first()
    if check is not None:
        return check
    check = ReferenceCheck.objects.create(
        version=task.version, task=task, reference=reference, checked_by=actor
    )
    audit_record(
        actor=actor,
        action=AuditAction.REFERENCE_CHECKED,
        obj=check,
        module_id=task.version.module_id,
        version_id=task.version_id,
        data={"reference": reference.pk, "task": task.pk},
    )
    return check


@transaction.atomic
def task_reassign(*, actor, task: ReviewTask, assignee) -> ReviewTask:
    """Assign an open task to one reviewer of its role (admins only, audited)."""
    if not is_admin(actor):
        raise PermissionDenied("Only admins reassign review tasks.")
    version_id = ReviewTask.objects.values_list("version_id", flat=True).get(pk=task.pk)
    module, version = _lock_version(version_id)
    task = ReviewTask.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"This task is already {task.status}.", field="status")
    refusal = decision_policy.refusal(assignee, task, version=version, assigning=True)
    if refusal is not None:
        name = assignee.get_username()
        why = {
            RefusalCode.INACTIVE: f"{name} does not hold the {task.role} reviewer role.",
            RefusalCode.ROLE: f"{name} does not hold the {task.role} reviewer role.",
            RefusalCode.AUTHORED: f"{name} wrote or edited this version.",
            RefusalCode.OTHER_ROLE: f"{name} already signed this version in another role.",
        }
        raise InvalidInput(why.get(refusal.code, refusal.message), field="assignee")
    old = task.assignee_id
    task.assignee = assignee
    task.save(update_fields=["assignee"])
    audit_record(
        actor=actor,
        action=AuditAction.TASK_REASSIGNED,
        obj=task,
        module_id=module.pk,
        version_id=version.pk,
        data={**_task_data(task), "from": old, "to": assignee.pk},
    )
    notifications.send_on_commit(
        subject=f"Review task assigned: {notifications.version_label(version)}",
        body=f"You were assigned the {task.role} review, due {task.due_at:%Y-%m-%d %H:%M} UTC.",
        recipients=[assignee],
    )
    return task


# --- withdrawal ----------------------------------------------------------------------------


def module_withdraw(
    *, actor, module: Module, reason: str, password: str | None, request=None
) -> Signature:
    """Pull the module's approved version from delivery at once, with a signed reason."""
    if not has_role(actor, *WITHDRAW_ROLES):
        raise PermissionDenied("Only admins and medical or regulatory reviewers withdraw content.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give the reason for the withdrawal.", field="reason")
    _verify_signer(
        actor=actor,
        password=password,
        request=request,
        intent="withdraw",
        version_of=lambda: (
            ModuleVersion.objects.approved_now().filter(module=module).first()
            or module.versions.order_by("-number").first()
        ),
    )
    with transaction.atomic():
        module = Module.objects.select_for_update().get(pk=module.pk)
        version = (
            ModuleVersion.objects.select_for_update(of=("self",))
            .filter(pk__in=ModuleVersion.objects.approved_now().filter(module=module).values("pk"))
            .select_related("module__brand", "module__market", "module__created_by", "created_by")
            .first()
        )
        if version is None:
            raise Conflict("This module has no approved version to withdraw.", field="status")
        now = timezone.now()
        content_hash = version.compute_content_hash()
        signature = Signature.objects.create(
            version=version,
            signer=actor,
            printed_name=printed_name(actor),
            meaning=SignatureMeaning.WITHDRAWN,
            signed_at=now,
            content_hash=content_hash,
            reason=reason,
        )
        audit_record(
            actor=actor,
            action=AuditAction.SIGNATURE_APPLIED,
            obj=signature,
            module_id=module.pk,
            version_id=version.pk,
            data={
                "printed_name": signature.printed_name,
                "meaning": SignatureMeaning.WITHDRAWN,
                "signed_at": now,
                "content_hash": content_hash,
            },
        )
        _transition(
            actor=actor,
            version=version,
            to=VersionStatus.WITHDRAWN,
            now=now,
            reason=reason,
            signature=signature.pk,
        )
        announce_delivery_change(module.pk)
        notifications.send_on_commit(
            subject=f"Withdrawn: {notifications.version_label(version)}",
            body=f"Withdrawn from delivery by {printed_name(actor)}.\n\nReason: {reason}\n",
            recipients=notifications.owners_of(version),
        )
    return signature


# --- annotations ---------------------------------------------------------------------------


@transaction.atomic
def annotation_create(
    *,
    actor,
    version: ModuleVersion,
    field: str = "",
    start: int | None = None,
    end: int | None = None,
    text: str,
    parent: Annotation | None = None,
) -> Annotation:
    """Anchor a comment on a span of one field of a submitted version, or reply to one."""
    if not can_see_unapproved(actor):
        raise PermissionDenied("You may not comment on content.")
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The comment is empty.", field="text")
    if parent is not None:
        if parent.version_id != version.pk:
            raise InvalidInput("The parent comment belongs to another version.", field="parent")
        if not may_reply(actor, version.module):
            raise PermissionDenied("Only the module's authors and reviewers reply to comments.")
        # Replies hang off the thread's root and share its anchor.
        root = parent.parent or parent
        field, start, end, quoted = root.field, root.start, root.end, root.quoted_text
    else:
        root = None
        if version.status == VersionStatus.DRAFT:
            raise Conflict(
                "A draft is still changing; comment once it is submitted.", field="version"
            )
        if field not in AnnotationField.values:
            raise InvalidInput(
                f"Field must be one of {', '.join(AnnotationField.values)}.", field="field"
            )
        value = getattr(version, field) or ""
        if not isinstance(start, int) or start < 0 or start >= len(value):
            raise InvalidInput(
                f"Start must be between 0 and {max(len(value) - 1, 0)} for {field}.",
                field="start",
            )
        if not isinstance(end, int) or end <= start or end > len(value):
            raise InvalidInput(
                f"End must be after start and at most {len(value)} (the length of {field}).",
                field="end",
            )
        quoted = value[start:end]
    annotation = Annotation.objects.create(
        version=version,
        field=field,
        start=start,
        end=end,
        quoted_text=quoted,
        text=text,
        author=actor,
        parent=root,
    )
    audit_record(
        actor=actor,
        action=AuditAction.ANNOTATION_REPLIED if root else AuditAction.ANNOTATION_CREATED,
        obj=annotation,
        module_id=version.module_id,
        version_id=version.pk,
        data={
            "field": field,
            "start": start,
            "end": end,
            "quoted_text": quoted,
            "text": text,
            "parent": root.pk if root else None,
        },
    )
    return annotation


@transaction.atomic
def annotation_resolve(*, actor, annotation: Annotation) -> Annotation:
    """Mark a comment thread resolved."""
    annotation = (
        Annotation.objects.select_for_update(of=("self",))
        .select_related("version__module")
        .get(pk=annotation.pk)
    )
    module = annotation.version.module
    allowed = (
        annotation.author_id == actor.pk
        or is_admin(actor)
        or has_role(actor, Role.MEDICAL, Role.LEGAL, Role.REGULATORY)
        or can_edit_module(actor, module)
    )
    if not allowed:
        raise PermissionDenied("You may not resolve this comment.")
    if annotation.parent_id is not None:
        raise InvalidInput("Resolve the thread, not a reply.", field="annotation")
    if annotation.resolved:
        raise Conflict("This comment is already resolved.", field="resolved")
    annotation.resolved = True
    annotation.resolved_by = actor
    annotation.resolved_at = timezone.now()
    annotation.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    audit_record(
        actor=actor,
        action=AuditAction.ANNOTATION_RESOLVED,
        obj=annotation,
        module_id=module.pk,
        version_id=annotation.version_id,
        data={"annotation": annotation.pk},
    )
    return annotation


def may_reply(user, module: Module) -> bool:
    """The module's authors (and admins) answer comments; reviewers may reply too."""
    return can_edit_module(user, module) or is_reviewer(user)


def may_address(user, module: Module) -> bool:
    """Only the module's authors (or an admin acting for them) say a comment is addressed."""
    return can_edit_module(user, module)


@transaction.atomic
def annotation_address(*, actor, annotation: Annotation, addressed: bool = True) -> Annotation:
    """An author marks a comment thread addressed (or, ``addressed=False``, not addressed)."""
    annotation = (
        Annotation.objects.select_for_update(of=("self",))
        .select_related("version__module")
        .get(pk=annotation.pk)
    )
    module = annotation.version.module
    if not may_address(actor, module):
        raise PermissionDenied("Only the module's authors mark a comment addressed.")
    if annotation.parent_id is not None:
        raise InvalidInput("Mark the thread addressed, not a reply.", field="annotation")
    if annotation.resolved:
        raise Conflict("This comment is already resolved by its reviewer.", field="resolved")
    if annotation.addressed == addressed:
        state = "already addressed" if addressed else "not marked addressed"
        raise Conflict(f"This comment is {state}.", field="addressed")
    annotation.addressed = addressed
    annotation.addressed_by = actor if addressed else None
    annotation.addressed_at = timezone.now() if addressed else None
    annotation.save(update_fields=["addressed", "addressed_by", "addressed_at"])
    audit_record(
        actor=actor,
        action=AuditAction.ANNOTATION_ADDRESSED if addressed else AuditAction.ANNOTATION_REOPENED,
        obj=annotation,
        module_id=module.pk,
        version_id=annotation.version_id,
        data={
            "annotation": annotation.pk,
            "version": annotation.version.number,
            "field": annotation.field,
            "quoted_text": annotation.quoted_text,
        },
    )
    return annotation


def _carry_annotations(*, actor, version: ModuleVersion) -> None:
    """Re-anchor the previous version's open comments on this one, or mark them outdated."""
    previous = (
        ModuleVersion.objects.filter(module_id=version.module_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )
    if previous is None:
        return
    roots = (
        Annotation.objects.select_for_update()
        .filter(version=previous, parent__isnull=True, resolved=False, outdated=False)
        .prefetch_related("replies")
    )
    carried, outdated = {}, []
    for root in roots:
        if root.copies.filter(version=version).exists():
            continue
        at = find_anchor(getattr(version, root.field) or "", root.quoted_text, root.start)
        if at is None:
            root.outdated = True
            root.save(update_fields=["outdated"])
            outdated.append(root.pk)
            continue
        copy = Annotation.objects.create(
            version=version,
            field=root.field,
            start=at,
            end=at + len(root.quoted_text),
            quoted_text=root.quoted_text,
            text=root.text,
            author_id=root.author_id,
            created_at=root.created_at,
            origin=root,
            addressed=root.addressed,
            addressed_by_id=root.addressed_by_id,
            addressed_at=root.addressed_at,
        )
        for reply in root.replies.all():
            Annotation.objects.create(
                version=version,
                field=root.field,
                start=copy.start,
                end=copy.end,
                quoted_text=root.quoted_text,
                text=reply.text,
                author_id=reply.author_id,
                created_at=reply.created_at,
                parent=copy,
                origin=reply,
            )
        carried[root.pk] = copy.pk
    if carried or outdated:
        audit_record(
            actor=actor,
            action=AuditAction.ANNOTATIONS_CARRIED_OVER,
            obj=version,
            module_id=version.module_id,
            version_id=version.pk,
            data={"from_version": previous.pk, "carried": carried, "outdated": outdated},
        )


# --- scheduled: expiry and reminders -------------------------------------------------------


def versions_expire(*, today: date | None = None) -> dict[str, int]:
    """Mark approved versions past their expiry date expired; warn owners ahead, once.

    Delivery never depended on this job (expiry is checked at query time); it
    makes the state visible, writes the audit entries and tells people.
    """
    today = today or timezone.localdate()
    expired = 0
    due = ModuleVersion.objects.filter(status=VersionStatus.APPROVED, expires_on__lt=today)
    for version_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            module, version = _lock_version(version_id)
            if (
                version.status != VersionStatus.APPROVED
                or version.expires_on is None
                or version.expires_on >= today
            ):
                continue  # another run got there first
            _transition(
                actor=None,
                version=version,
                to=VersionStatus.EXPIRED,
                now=timezone.now(),
                expires_on=version.expires_on,
            )
            announce_delivery_change(module.pk)
            notifications.send_on_commit(
                subject=f"Expired: {notifications.version_label(version)}",
                body=f"Its approval expired on {version.expires_on:%Y-%m-%d}; it is no "
                "longer served. Edit the module to start a new version for review.",
                recipients=notifications.owners_of(version),
            )
            expired += 1

    notified = 0
    horizon = today + timedelta(days=settings.EXPIRY_NOTICE_DAYS)
    soon = ModuleVersion.objects.filter(
        status=VersionStatus.APPROVED,
        expires_on__gte=today,
        expires_on__lte=horizon,
        expiry_notice__isnull=True,
    )
    for version_id in list(soon.values_list("pk", flat=True)):
        with transaction.atomic():
            module, version = _lock_version(version_id)
            _, created = ExpiryNotice.objects.get_or_create(
                version=version, defaults={"expires_on": version.expires_on}
            )
            if not created:
                continue
            audit_record(
                actor=None,
                action=AuditAction.VERSION_EXPIRY_NOTICE_SENT,
                obj=version,
                module_id=module.pk,
                version_id=version.pk,
                data={"expires_on": version.expires_on},
            )
            notifications.send_on_commit(
                subject=f"Expires on {version.expires_on:%Y-%m-%d}: "
                f"{notifications.version_label(version)}",
                body=f"The approval of {notifications.version_label(version)} expires on "
                f"{version.expires_on:%Y-%m-%d}. Revise and resubmit it before then to keep "
                "it in delivery.",
                recipients=notifications.owners_of(version),
            )
            notified += 1
    return {"expired": expired, "notified": notified}


def tasks_remind_overdue(*, now: datetime | None = None) -> int:
    """Email the reviewers of overdue open tasks, at most once a day per task."""
    now = now or timezone.now()
    since = now - timedelta(days=1)
    overdue = ReviewTask.objects.overdue(now).exclude(reminded_at__gt=since)
    reminded = 0
    for task_id in list(overdue.values_list("pk", flat=True)):
        with transaction.atomic():
            task = (
                ReviewTask.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("version__module", "assignee")
                .filter(pk=task_id, status=TaskStatus.OPEN, due_at__lt=now)
                .exclude(reminded_at__gt=since)
                .first()
            )
            if task is None:
                continue  # decided meanwhile, or another worker is reminding it
            task.reminded_at = now
            task.save(update_fields=["reminded_at"])
            if task.assignee_id:
                recipients = [task.assignee]
            else:
                excluded = authors_of(task.version)
                recipients = [
                    u for u in notifications.reviewers_for_role(task.role) if u.pk not in excluded
                ]
            audit_record(
                actor=None,
                action=AuditAction.TASK_REMINDED,
                obj=task,
                module_id=task.version.module_id,
                version_id=task.version_id,
                data={**_task_data(task), "due_at": task.due_at, "to": [u.pk for u in recipients]},
            )
            notifications.send_on_commit(
                subject=f"Overdue {task.role} review: {notifications.version_label(task.version)}",
                body=f"This review was due {task.due_at:%Y-%m-%d %H:%M} UTC.",
                recipients=recipients,
            )
            reminded += 1
    return reminded
