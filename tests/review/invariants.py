"""Checks of compliance invariants 1-6 (DESIGN.md) over the whole database.

Used after single workflows and after every step of the state-machine test.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.utils import timezone

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
)
from content_modules.review.services import authors_of

ONCE_APPROVED = {
    VersionStatus.APPROVED,
    VersionStatus.SUPERSEDED,
    VersionStatus.EXPIRED,
    VersionStatus.WITHDRAWN,
}


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
    for version in ModuleVersion.objects.exclude(status=VersionStatus.DRAFT):
        assert version.content_hash == version.compute_content_hash(), version
    for old in ModuleVersion.objects.filter(status=VersionStatus.SUPERSEDED):
        newer = ModuleVersion.objects.filter(
            module_id=old.module_id, number__gt=old.number, status__in=ONCE_APPROVED
        )
        assert newer.exists(), f"{old} superseded without a newer approved version"
        assert old.approved_at is not None


def check_approvals() -> None:
    """Invariants 3 and 4: every approval has all roles signed on its hash, by distinct
    people who neither wrote nor edited it."""
    for version in ModuleVersion.objects.filter(approved_at__isnull=False).select_related(
        "module__brand", "module"
    ):
        assert version.status in ONCE_APPROVED
        review = Review.objects.get(version=version, status=ReviewStatus.APPROVED)
        current = version.compute_content_hash()
        signers_by_role = {}
        for role in version.module.brand.required_review_roles():
            task = ReviewTask.objects.get(review=review, role=role)
            sig = Signature.objects.filter(task=task, meaning=SignatureMeaning.APPROVED).latest(
                "id"
            )
            assert sig.content_hash == current, f"{role} signed another hash on {version}"
            signers_by_role[role] = sig.signer_id
        assert len(set(signers_by_role.values())) == len(signers_by_role), "one person, two roles"
        assert not set(signers_by_role.values()) & authors_of(version), "author approved"


def check_segregation() -> None:
    """Invariant 4 for every review signature, whatever its meaning."""
    roles_per_signer = defaultdict(set)
    for sig in Signature.objects.filter(task__isnull=False).select_related("version__module"):
        assert sig.signer_id not in authors_of(sig.version)
        roles_per_signer[(sig.version_id, sig.signer_id)].add(sig.role)
    assert all(len(roles) == 1 for roles in roles_per_signer.values())


def check_signatures() -> None:
    """Invariant 5: each decision and withdrawal is signed with a full manifestation."""
    for sig in Signature.objects.all():
        assert sig.printed_name.strip()
        assert sig.signed_at is not None and sig.signed_at.utcoffset().total_seconds() == 0
        assert sig.meaning in SignatureMeaning.values
        assert len(sig.content_hash) == 64
    for task in ReviewTask.objects.filter(status__in=TASK_DECIDED):
        assert task.signatures.filter(signer=task.decided_by).exists()
    for version in ModuleVersion.objects.filter(status=VersionStatus.WITHDRAWN):
        assert version.signatures.filter(meaning=SignatureMeaning.WITHDRAWN).exists()


def check_audit() -> None:
    """Invariant 6: the chain verifies and every state change has its entry."""
    result = audit_verify()
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


def check_all(today=None) -> None:
    """Every compliance invariant 1-6."""
    check_delivery(today)
    check_frozen_and_supersession()
    check_approvals()
    check_segregation()
    check_signatures()
    check_audit()
