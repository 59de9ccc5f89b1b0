"""Checks of compliance invariants 1-6 (DESIGN.md) over the whole database.

Used after single workflows and after every step of the state-machine test.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict

from django.db.models import Exists, OuterRef
from django.utils import timezone

from content_modules.accounts.models import AuthFailure
from content_modules.audit.checkpoints import checkpoint_write
from content_modules.audit.models import AuditEntry
from content_modules.audit.services import audit_verify
from content_modules.library.models import ModuleVersion, VersionStatus
from content_modules.review.models import (
    TASK_DECIDED,
    Review,
    ReviewStatus,
    ReviewTask,
    Signature,
    SignatureMeaning,
    TaskStatus,
)

ONCE_APPROVED = {
    VersionStatus.APPROVED,
    VersionStatus.SUPERSEDED,
    VersionStatus.EXPIRED,
    VersionStatus.WITHDRAWN,
}


def _with_content(qs):
    """Everything compute_content_hash reads, loaded in a constant number of queries."""
    return qs.select_related(
        "message", "tonality", "format", "image", "module__brand", "module__market"
    ).prefetch_related("themes", "channels", "references")


def check_delivery(today=None) -> None:
    """Invariant 1: delivery returns exactly the versions approved and unexpired now."""
    today = today or timezone.localdate()
    served = set(ModuleVersion.objects.approved_now(today).values_list("pk", flat=True))
    expected = {v.pk for v in ModuleVersion.objects.all() if v.is_approved_now(today)}
    assert served == expected
    for version in ModuleVersion.objects.filter(pk__in=served):
        assert version.status == VersionStatus.APPROVED
        assert version.expires_on is None or version.expires_on >= today
    per_module = Counter(
        ModuleVersion.objects.filter(status=VersionStatus.APPROVED).values_list(
            "module_id", flat=True
        )
    )
    assert all(n == 1 for n in per_module.values())


def check_frozen_and_supersession() -> None:
    """Invariant 2: submitted content never changes; only a newer approval supersedes."""
    for version in _with_content(ModuleVersion.objects.exclude(status=VersionStatus.DRAFT)):
        assert version.content_hash == version.compute_content_hash(), version
    for old in ModuleVersion.objects.filter(status=VersionStatus.SUPERSEDED):
        newer = ModuleVersion.objects.filter(
            module_id=old.module_id, number__gt=old.number, status__in=ONCE_APPROVED
        )
        assert newer.exists(), f"{old} superseded without a newer approved version"
        assert old.approved_at is not None


def _authors_by_version() -> dict[int, set[int]]:
    """authors_of() for every version, in three queries."""
    authors: dict[int, set[int]] = defaultdict(set)
    for pk, created_by, module_creator in ModuleVersion.objects.values_list(
        "pk", "created_by_id", "module__created_by_id"
    ):
        authors[pk].update((created_by, module_creator))
    for version_id, user_id in ModuleVersion.editors.through.objects.values_list(
        "moduleversion_id", "user_id"
    ):
        authors[version_id].add(user_id)
    return authors


def check_approvals() -> None:
    """Invariants 3 and 4: every approval has all roles signed on its hash, by distinct
    people who neither wrote nor edited it."""
    latest: dict[tuple[int, str], tuple[int, str, int]] = {}
    for sig_id, version_id, role, content_hash, signer_id in Signature.objects.filter(
        meaning=SignatureMeaning.APPROVED, task__review__status=ReviewStatus.APPROVED
    ).values_list("id", "version_id", "role", "content_hash", "signer_id"):
        key = (version_id, role)
        if key not in latest or sig_id > latest[key][0]:
            latest[key] = (sig_id, content_hash, signer_id)
    authors = _authors_by_version()
    for version in _with_content(ModuleVersion.objects.filter(approved_at__isnull=False)):
        assert version.status in ONCE_APPROVED
        current = version.compute_content_hash()
        signers = set()
        roles = version.module.brand.required_review_roles()
        for role in roles:
            assert (version.pk, role) in latest, f"no {role} approval on {version}"
            _, content_hash, signer_id = latest[(version.pk, role)]
            assert content_hash == current, f"{role} signed another hash on {version}"
            signers.add(signer_id)
        assert len(signers) == len(roles), "one person filled two roles"
        assert not signers & authors[version.pk], "an author approved"


def check_segregation() -> None:
    """Invariant 4 for every review signature, whatever its meaning."""
    authors = _authors_by_version()
    roles_per_signer = defaultdict(set)
    for version_id, signer_id, role in Signature.objects.filter(task__isnull=False).values_list(
        "version_id", "signer_id", "role"
    ):
        assert signer_id not in authors[version_id]
        roles_per_signer[(version_id, signer_id)].add(role)
    assert all(len(roles) == 1 for roles in roles_per_signer.values())


def check_signatures() -> None:
    """Invariant 5: each decision and withdrawal is signed with a full manifestation."""
    for printed_name, signed_at, meaning, content_hash in Signature.objects.values_list(
        "printed_name", "signed_at", "meaning", "content_hash"
    ):
        assert printed_name.strip()
        assert signed_at is not None and signed_at.utcoffset().total_seconds() == 0
        assert meaning in SignatureMeaning.values
        assert len(content_hash) == 64
    signed = Signature.objects.filter(task=OuterRef("pk"), signer=OuterRef("decided_by"))
    unsigned = ReviewTask.objects.filter(status__in=TASK_DECIDED).exclude(Exists(signed))
    assert not unsigned.exists(), list(unsigned)
    withdrawal = Signature.objects.filter(
        version=OuterRef("pk"), meaning=SignatureMeaning.WITHDRAWN
    )
    unsigned_withdrawals = ModuleVersion.objects.filter(status=VersionStatus.WITHDRAWN).exclude(
        Exists(withdrawal)
    )
    assert not unsigned_withdrawals.exists()
    # Every failed signing attempt (a signing password checked and refused) is in the
    # audit trail, naming who, which version and from where.
    refused = AuthFailure.objects.filter(kind=AuthFailure.Kind.SIGNATURE).count()
    failed = list(
        AuditEntry.objects.filter(
            action="signature.failed", data__reason__in=["wrong_password", "missing_password"]
        )
    )
    assert len(failed) == refused, f"{refused} refused signatures, {len(failed)} audited"
    for entry in failed:
        assert entry.actor_id is not None and entry.version_id is not None
        assert "client_ip" in entry.data and entry.data["intent"]


def check_audit() -> None:
    """Invariant 6: the keyed chain verifies, also against a fresh signed checkpoint
    (tests/security/test_audit_tamper.py makes the attacks it must catch), and every
    state change has its entry."""
    result = audit_verify()
    assert result.ok, result.reason
    # A folder of its own per check: a rolled-back transaction (the state machine's
    # examples) takes its entries back, but not the files of an earlier checkpoint.
    with tempfile.TemporaryDirectory() as folder:
        checkpoint_write(directory=folder)
        result = audit_verify(checkpoints=True, checkpoint_dir=folder)
    assert result.ok, result.reason
    actions = Counter(AuditEntry.objects.values_list("action", flat=True))
    assert actions["signature.applied"] == Signature.objects.count()
    assert actions["version.submitted"] == Review.objects.count()
    assert (
        actions["version.approved"]
        == ModuleVersion.objects.filter(approved_at__isnull=False).count()
    )
    assert (
        actions["version.withdrawn"]
        == ModuleVersion.objects.filter(status=VersionStatus.WITHDRAWN).count()
    )
    assert (
        actions["version.superseded"]
        == ModuleVersion.objects.filter(status=VersionStatus.SUPERSEDED).count()
    )
    assert (
        actions["version.expired"]
        == ModuleVersion.objects.filter(status=VersionStatus.EXPIRED).count()
    )
    decided = ReviewTask.objects.filter(status__in=TASK_DECIDED).count()
    assert actions["task.decided"] >= decided


ROUND_VERSION_STATUS = {
    ReviewStatus.APPROVED: ONCE_APPROVED,
    ReviewStatus.CHANGES_REQUESTED: {VersionStatus.CHANGES_REQUESTED},
    ReviewStatus.REJECTED: {VersionStatus.REJECTED},
}


def check_rounds() -> None:
    """The lifecycle's round rule (DESIGN.md): every required role finishes its round.

    An open round keeps its version in review while any task is open; a round
    closes only when every task is decided (approved when all approve, rejected
    when any rejects, otherwise changes requested), or when an admin or author
    recalls it with a reason, which is the only way a task is cancelled.
    """
    tasks: dict[int, list[str]] = defaultdict(list)
    roles: dict[int, set[str]] = defaultdict(set)
    for review_id, role, status in ReviewTask.objects.values_list("review_id", "role", "status"):
        tasks[review_id].append(status)
        roles[review_id].add(role)
    recalled = set(
        AuditEntry.objects.filter(action="review.recalled").values_list("object_id", flat=True)
    )
    for review in Review.objects.select_related("version__module__brand"):
        statuses = tasks[review.pk]
        if review.status == ReviewStatus.OPEN:
            assert review.version.status == VersionStatus.IN_REVIEW, review
            assert TaskStatus.OPEN in statuses, f"{review} is open with every task decided"
            assert TaskStatus.CANCELLED not in statuses
            continue
        assert TaskStatus.OPEN not in statuses, f"{review} closed with a task still open"
        assert review.closed_at is not None
        if review.status == ReviewStatus.RECALLED:
            assert review.closed_by_id is not None and review.close_reason.strip()
            assert str(review.pk) in recalled, f"{review} recalled without an audit entry"
            rejected = TaskStatus.REJECTED in statuses
            expected = VersionStatus.REJECTED if rejected else VersionStatus.CHANGES_REQUESTED
            assert review.version.status == expected, review
            continue
        assert TaskStatus.CANCELLED not in statuses, f"{review} cancelled a task without recall"
        assert set(review.version.module.brand.required_review_roles()) <= roles[review.pk]
        if TaskStatus.REJECTED in statuses:
            outcome = ReviewStatus.REJECTED
        elif set(statuses) == {TaskStatus.APPROVED}:
            outcome = ReviewStatus.APPROVED
        else:
            outcome = ReviewStatus.CHANGES_REQUESTED
        assert review.status == outcome, f"{review}: tasks {statuses}"
        assert review.version.status in ROUND_VERSION_STATUS[outcome], review


def check_all(today=None) -> None:
    """Every compliance invariant 1-6, and the round rule of the lifecycle."""
    check_rounds()
    check_delivery(today)
    check_frozen_and_supersession()
    check_approvals()
    check_segregation()
    check_signatures()
    check_audit()
