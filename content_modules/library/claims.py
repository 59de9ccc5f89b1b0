"""Claims and their references: link a claim in the text to a reference, carry links to the
next version, and flag claim sentences that no link supports.

A claim link is anchored like a review annotation: a field, a span [start, end) and the
quoted text. When a draft is edited or the next version is made, each link is re-anchored
on the occurrence of its quoted text nearest to where it was; a link whose text is gone, or
whose reference the version no longer cites, is not carried (and the audit entry says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction

from content_modules.accounts.roles import Role, has_role, is_admin
from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import Conflict, InvalidInput, PermissionDenied

from .models import ClaimField, ClaimLink, ModuleVersion, Reference, VersionStatus
from .services import can_edit_module

CLAIM_FIELDS: tuple[str, ...] = tuple(ClaimField.values)
LOCATOR_MAX = 300
REVIEW_ROLES = (Role.MEDICAL, Role.LEGAL, Role.REGULATORY)

# --- the flagging rule ----------------------------------------------------------------------

# A sentence ends at . ! or ? followed by white space (so "2.5" and "p.4" do not end one),
# or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PERCENT = re.compile(r"\d\s*%|\bper\s?cent\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_COMPARATIVE = re.compile(
    r"\b(?:reduc(?:e|es|ed|ing|tion|tions)|versus|vs\.?|fewer|less|lower|higher|greater"
    r"|better|faster|longer|shorter|improv(?:e|es|ed|ing|ement)|increas(?:e|es|ed|ing)"
    r"|decreas(?:e|es|ed|ing)|superior|inferior|compared|than)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ClaimSentence:
    """A sentence of one field that makes a checkable claim, and why it counts as one."""

    field: str
    start: int
    end: int
    text: str
    reason: str


def claim_reason(sentence: str) -> str | None:
    """Why ``sentence`` is a claim that needs a reference (a percentage, a number or a
    comparative), or None when it makes no such claim."""
    if _PERCENT.search(sentence):
        return "states a percentage"
    if _NUMBER.search(sentence):
        return "states a number"
    found = _COMPARATIVE.search(sentence)
    if found:
        return f"makes a comparison (“{found.group(0)}”)"
    return None


def sentences(text: str) -> list[tuple[int, int]]:
    """The spans [start, end) of the sentences of ``text``, without surrounding white space."""
    spans = []
    at = 0
    for boundary in [*_SENTENCE_END.finditer(text), None]:
        stop = boundary.start() if boundary else len(text)
        piece = text[at:stop]
        lead = len(piece) - len(piece.lstrip())
        trimmed = piece.strip()
        if trimmed:
            spans.append((at + lead, at + lead + len(trimmed)))
        if boundary is None:
            break
        at = boundary.end()
    return spans


def claim_sentences(version: ModuleVersion) -> list[ClaimSentence]:
    """Every sentence of the version's claim fields that makes a checkable claim."""
    found = []
    for name in CLAIM_FIELDS:
        value = getattr(version, name) or ""
        for start, end in sentences(value):
            reason = claim_reason(value[start:end])
            if reason:
                found.append(ClaimSentence(name, start, end, value[start:end], reason))
    return found


def unlinked_claims(version: ModuleVersion, links: list[ClaimLink] | None = None) -> list:
    """Claim sentences that no claim link of the version overlaps: the ones to flag."""
    if links is None:
        links = list(version.claim_links.all())
    return [
        claim
        for claim in claim_sentences(version)
        if not any(
            link.field == claim.field and link.start < claim.end and claim.start < link.end
            for link in links
        )
    ]


# --- permissions ----------------------------------------------------------------------------


def claim_link_refusal(user, version: ModuleVersion) -> str | None:
    """Why ``user`` may not link or unlink claims on ``version`` (None when they may).

    Authors work on their draft; reviewers (and admins) on the version they review.
    Every other version is closed and its links are part of its record.
    """
    if version.status == VersionStatus.DRAFT:
        if can_edit_module(user, version.module):
            return None
        return "Only the module's authors and admins link claims on a draft."
    if version.status == VersionStatus.IN_REVIEW:
        if is_admin(user) or has_role(user, *REVIEW_ROLES):
            return None
        return "While a version is in review only its reviewers and admins link claims."
    return (
        f"Version {version.number} is {version.get_status_display().lower()}; "
        "its claim links can no longer change."
    )


def _check_may_link(user, version: ModuleVersion) -> None:
    """403 for someone who never links claims on this module's versions; 409 for someone
    who does, but not in the version's present state (a reviewer on a draft, an author
    while it is in review, anyone once it is closed)."""
    refusal = claim_link_refusal(user, version)
    if refusal is None:
        return
    works_on_it = (
        can_edit_module(user, version.module) or is_admin(user) or has_role(user, *REVIEW_ROLES)
    )
    if not works_on_it:
        raise PermissionDenied(refusal)
    raise Conflict(refusal, field="version")


def _lock(version: ModuleVersion) -> ModuleVersion:
    return (
        ModuleVersion.objects.select_for_update(of=("self",))
        .select_related("module")
        .get(pk=version.pk)
    )


# --- actions --------------------------------------------------------------------------------


@transaction.atomic
def claim_link_create(
    *,
    actor,
    version: ModuleVersion,
    field: str,
    start: int,
    end: int,
    reference: Reference,
    locator: str = "",
    quote: str = "",
) -> ClaimLink:
    """Link the claim at [start, end) of one field of ``version`` to one of its references.

    ``quote``, when given, is the text the person selected: it must match the span, so a
    page rendered from an older draft cannot anchor a link on the wrong words.
    """
    version = _lock(version)
    _check_may_link(actor, version)
    if field not in CLAIM_FIELDS:
        raise InvalidInput(f"Field must be one of {', '.join(CLAIM_FIELDS)}.", field="field")
    value = getattr(version, field) or ""
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < len(value):
        raise InvalidInput(
            f"Start must be between 0 and {max(len(value) - 1, 0)} for {field}.", field="start"
        )
    if not isinstance(end, int) or isinstance(end, bool) or not start < end <= len(value):
        raise InvalidInput(
            f"End must be after start and at most {len(value)} (the length of {field}).",
            field="end",
        )
    quoted = value[start:end]
    if not quoted.strip():
        raise InvalidInput("The selected text is only white space.", field="start")
    if quote and quote != quoted:
        raise InvalidInput(
            "The selected text does not match the saved text at that position; "
            "reload the page and select it again.",
            field="quote",
        )
    if not version.references.filter(pk=reference.pk).exists():
        raise InvalidInput(
            f"Reference {reference.pk} is not attached to version {version.number}; "
            "attach it to the module first.",
            field="reference",
        )
    locator = (locator or "").strip()
    if len(locator) > LOCATOR_MAX:
        raise InvalidInput(
            f"The page or passage is at most {LOCATOR_MAX} characters.", field="locator"
        )
    if ClaimLink.objects.filter(
        version=version, field=field, start=start, end=end, reference=reference
    ).exists():
        raise Conflict("This claim is already linked to this reference.", field="reference")
    link = ClaimLink.objects.create(
        version=version,
        field=field,
        start=start,
        end=end,
        quoted_text=quoted,
        reference=reference,
        locator=locator,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action=AuditAction.CLAIM_LINK_CREATED,
        obj=link,
        module_id=version.module_id,
        version_id=version.pk,
        data={
            "version": version.number,
            "field": field,
            "start": start,
            "end": end,
            "quoted_text": quoted,
            "reference": reference.pk,
            "locator": locator,
        },
    )
    return link


@transaction.atomic
def claim_link_delete(*, actor, link: ClaimLink) -> None:
    """Remove one claim link from a version that is still open to change."""
    version = _lock(link.version)
    link = ClaimLink.objects.select_for_update().get(pk=link.pk)
    _check_may_link(actor, version)
    data = {
        "version": version.number,
        "field": link.field,
        "start": link.start,
        "end": link.end,
        "quoted_text": link.quoted_text,
        "reference": link.reference_id,
        "locator": link.locator,
    }
    audit_record(
        actor=actor,
        action=AuditAction.CLAIM_LINK_DELETED,
        obj=link,
        module_id=version.module_id,
        version_id=version.pk,
        data=data,
    )
    link.delete()


def find_anchor(value: str, quoted: str, near: int) -> int | None:
    """The start of the occurrence of ``quoted`` in ``value`` nearest to ``near``."""
    if not quoted:
        return None
    best = None
    at = value.find(quoted)
    while at != -1:
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = value.find(quoted, at + 1)
    return best


def claim_links_carry(*, actor, source: ModuleVersion, target: ModuleVersion) -> None:
    """Re-anchor ``source``'s links on ``target`` (the next version, or the same draft after
    an edit) where the quoted text is still there and the reference still cited.

    Called inside the edit's transaction. For a draft edited in place (source is target)
    links move or are removed; for a new version they are copied.
    """
    links = list(ClaimLink.objects.filter(version=source).order_by("field", "start", "id"))
    if not links:
        return
    cited = set(target.references.values_list("pk", flat=True))
    carried: dict[int, list[int]] = {}
    dropped: dict[int, str] = {}
    seen: set[tuple[str, int, int, int]] = set()
    for link in links:
        at = find_anchor(getattr(target, link.field) or "", link.quoted_text, link.start)
        key = (link.field, at or 0, (at or 0) + len(link.quoted_text), link.reference_id)
        if link.reference_id not in cited:
            dropped[link.pk] = "reference no longer attached"
        elif at is None:
            dropped[link.pk] = "text no longer in the version"
        elif key in seen:
            dropped[link.pk] = "same claim and reference as another link"
        if link.pk in dropped:
            if source.pk == target.pk:
                link.delete()
            continue
        seen.add(key)
        assert at is not None
        if source.pk == target.pk:
            if at != link.start:
                link.start, link.end = at, at + len(link.quoted_text)
                link.save(update_fields=["start", "end"])
                carried[link.pk] = [link.start, link.end]
            continue
        copy = ClaimLink.objects.create(
            version=target,
            field=link.field,
            start=at,
            end=at + len(link.quoted_text),
            quoted_text=link.quoted_text,
            reference_id=link.reference_id,
            locator=link.locator,
            created_by_id=link.created_by_id,
            created_at=link.created_at,
            origin=link,
        )
        carried[link.pk] = [copy.start, copy.end]
    if carried or dropped:
        audit_record(
            actor=actor,
            action=AuditAction.CLAIM_LINKS_CARRIED_OVER,
            obj=target,
            module_id=target.module_id,
            version_id=target.pk,
            data={
                "from_version": source.number,
                "to_version": target.number,
                "carried": {str(k): v for k, v in carried.items()},
                "dropped": {str(k): v for k, v in dropped.items()},
            },
        )


# --- what pages and the API show ------------------------------------------------------------


def version_claim_links(version: ModuleVersion) -> list[ClaimLink]:
    """The version's claim links with their references and people, in reading order."""
    return list(
        ClaimLink.objects.filter(version=version)
        .select_related("version", "reference", "created_by")
        .order_by("field", "start", "id")
    )


def claim_segments(
    value: str, links: list[ClaimLink], flagged: list[ClaimSentence], field: str
) -> list[dict]:
    """``value`` cut into pieces marked "linked", "flagged" or plain, for the claims panel."""
    marks = [0] * len(value)
    for claim in flagged:
        if claim.field == field:
            for i in range(claim.start, claim.end):
                marks[i] = 1
    for link in links:
        if link.field == field:
            for i in range(link.start, min(link.end, len(value))):
                marks[i] = 2
    pieces: list[dict] = []
    kinds = {0: "", 1: "flagged", 2: "linked"}
    for i, char in enumerate(value):
        kind = kinds[marks[i]]
        if pieces and pieces[-1]["kind"] == kind:
            pieces[-1]["text"] += char
        else:
            pieces.append({"kind": kind, "text": char})
    return pieces


def claims_context(user, version: ModuleVersion) -> dict:
    """What the claims panel of the edit and review pages shows for ``version``."""
    links = version_claim_links(version)
    flagged = unlinked_claims(version, links)
    fields = [
        {
            "name": name,
            "label": ClaimField(name).label,
            "segments": claim_segments(getattr(version, name) or "", links, flagged, name),
        }
        for name in CLAIM_FIELDS
        if getattr(version, name)
    ]
    refusal = claim_link_refusal(user, version)
    return {
        "claims_version": version,
        "claim_links": links,
        "claim_flags": flagged,
        "claim_fields": fields,
        "claim_references": list(version.references.all()),
        "can_link_claims": refusal is None,
        "claim_link_refusal": refusal,
    }
