"""Library actions: every write to modules and versions goes through these.

Each action checks permission and state, changes rows in one transaction,
writes the audit entry and announces the change after commit, so the API,
the browser pages, management commands and tasks all behave identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from content_modules import bounds
from content_modules.accounts.roles import Role, has_role, is_admin
from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import Conflict, InvalidInput, NotFound, PermissionDenied

from . import signals
from .files import read_reference_pdf, reference_pdf_name
from .images import write_file
from .models import (
    Brand,
    Channel,
    ImageAsset,
    Market,
    Module,
    ModuleVersion,
    Reference,
    Tag,
    TagKind,
    VersionStatus,
)

SCALAR_FIELDS = (
    "title",
    "headline",
    "body",
    "key_message",
    "call_to_action",
    "message",
    "tonality",
    "format",
    "image",
    "image_alt",
    "expires_on",
)
IMAGE_ALT_MAX_CHARS = 300
M2M_FIELDS = ("themes", "channels", "references")
CONTENT_KEYS = SCALAR_FIELDS + M2M_FIELDS


@dataclass
class VersionContent:
    """Validated content of one version, with tags and channels resolved to rows."""

    title: str
    headline: str
    body: str
    key_message: str
    message: Tag
    tonality: Tag
    format: Tag
    themes: list[Tag]
    channels: list[Channel]
    call_to_action: str = ""
    references: list[Reference] = field(default_factory=list)
    expires_on: date | None = None
    image: ImageAsset | None = None
    image_alt: str = ""


def validate_content_rules(data: dict[str, Any], *, partial: bool = False) -> None:
    """Domain rules every entry point shares; raises InvalidInput naming the field."""
    if "expires_on" in data and data["expires_on"] is not None:
        problem = bounds.expiry_problem(data["expires_on"])
        if problem:
            raise InvalidInput(problem, field="expires_on")
    if "body" in data and data["body"] is not None:
        if len(data["body"]) > settings.MODULE_BODY_MAX_CHARS:
            raise InvalidInput(
                f"Body is {len(data['body'])} characters; the limit is "
                f"{settings.MODULE_BODY_MAX_CHARS}.",
                field="body",
            )
    if "themes" in data and not data["themes"]:
        raise InvalidInput("At least one theme is required.", field="themes")
    alt = data.get("image_alt") or ""
    if len(alt) > IMAGE_ALT_MAX_CHARS:
        raise InvalidInput(
            f"Alt text is {len(alt)} characters; the limit is {IMAGE_ALT_MAX_CHARS}.",
            field="image_alt",
        )
    if "channels" in data and not data["channels"]:
        raise InvalidInput("At least one channel is required.", field="channels")
    expected = {
        "message": TagKind.MESSAGE,
        "tonality": TagKind.TONALITY,
        "format": TagKind.FORMAT,
    }
    for key, kind in expected.items():
        tag = data.get(key)
        if tag is not None and tag.kind != kind:
            raise InvalidInput(f"'{tag.slug}' is not a {kind} tag.", field=key)
    for tag in data.get("themes") or []:
        if tag.kind != TagKind.THEME:
            raise InvalidInput(f"'{tag.slug}' is not a theme tag.", field="themes")


def vocabulary_labels() -> dict[str, dict[str, str]]:
    """Every vocabulary's slug -> label, per kind (message, theme, tonality, format, channel).

    Pages show people labels ("Quality of life"), never the slugs machines use.
    """
    labels: dict[str, dict[str, str]] = {kind: {} for kind in TagKind.values}
    for kind, slug, label in Tag.objects.values_list("kind", "slug", "label"):
        labels.setdefault(kind, {})[slug] = label
    labels["channel"] = dict(Channel.objects.values_list("slug", "label"))
    return labels


def can_author(user) -> bool:
    """Authors and admins create and edit modules."""
    return has_role(user, Role.AUTHOR, Role.ADMIN)


def can_edit_module(user, module: Module) -> bool:
    """The module's creator, anyone who edited it, or an admin."""
    if is_admin(user):
        return True
    if not has_role(user, Role.AUTHOR):
        return False
    if module.created_by_id == user.pk:
        return True
    return module.versions.filter(editors=user).exists()


def _apply_content(version: ModuleVersion, values: dict[str, Any]) -> None:
    for key in SCALAR_FIELDS:
        if key in values:
            setattr(version, key, values[key])


def _set_m2m(version: ModuleVersion, values: dict[str, Any]) -> None:
    for key in M2M_FIELDS:
        if key in values:
            getattr(version, key).set(values[key])


def _finish_version(version: ModuleVersion) -> None:
    version.content_hash = version.compute_content_hash()
    version.save(update_fields=["content_hash", "updated_at"])
    Module.objects.filter(pk=version.module_id).exclude(latest_id=version.pk).update(
        latest_id=version.pk
    )


def _snapshot(version: ModuleVersion) -> dict[str, Any]:
    return version.content_dict()


def _content_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Old and new value of every changed key; a key only one side has (image_alt) counts."""
    return {
        k: {"old": before.get(k), "new": after.get(k)}
        for k in dict.fromkeys([*after, *before])
        if before.get(k) != after.get(k)
    }


@transaction.atomic
def module_create(
    *,
    actor,
    brand: Brand,
    market: Market,
    content: VersionContent,
    variant_of: Module | None = None,
) -> ModuleVersion:
    """Create a module and its first version as a draft."""
    if not can_author(actor):
        raise PermissionDenied("Only authors create modules.")
    values = {k: getattr(content, k) for k in CONTENT_KEYS}
    validate_content_rules(values)
    if variant_of is not None and variant_of.variant_of_id:
        # Variants hang off one root so a key message has a single family.
        variant_of = variant_of.variant_of
    module = Module.objects.create(
        brand=brand, market=market, variant_of=variant_of, created_by=actor
    )
    version = ModuleVersion(module=module, number=1, created_by=actor)
    _apply_content(version, values)
    version.save()
    _set_m2m(version, values)
    version.editors.add(actor)
    _finish_version(version)
    audit_record(
        actor=actor,
        action=AuditAction.MODULE_CREATED,
        obj=version,
        module_id=module.pk,
        version_id=version.pk,
        data={"version": 1, "status": version.status, "content": _snapshot(version)},
    )
    signals.announce_version_content(version)
    return version


@transaction.atomic
def module_edit(*, actor, module: Module, changes: dict[str, Any]) -> ModuleVersion:
    """Edit a module's working draft, or start the next draft version.

    An approved (or otherwise closed) version is never modified: the edit
    creates version n+1 as a draft and the approved one keeps serving until
    the new one is approved (invariant 2). A version in review answers 409.
    """
    module = Module.objects.select_for_update().get(pk=module.pk)
    if not can_edit_module(actor, module):
        raise PermissionDenied("You may not edit this module.")
    unknown = set(changes) - set(CONTENT_KEYS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=min(unknown))
    validate_content_rules(changes, partial=True)

    latest = module.versions.order_by("-number").first()
    if latest is None:
        raise NotFound("This module has no version yet.", field="id")
    if latest.status == VersionStatus.IN_REVIEW:
        raise Conflict(
            f"Version {latest.number} is in review; it cannot be edited until review ends.",
            field="status",
        )
    if latest.status == VersionStatus.DRAFT:
        version = latest
        before = _snapshot(version)
        _apply_content(version, changes)
        version.save()
        _set_m2m(version, changes)
        version.editors.add(actor)
        _finish_version(version)
        after = _snapshot(version)
        diff = _content_diff(before, after)
        _carry_claim_links(actor=actor, source=version, target=version)
        audit_record(
            actor=actor,
            action=AuditAction.VERSION_EDITED,
            obj=version,
            module_id=module.pk,
            version_id=version.pk,
            data={"version": version.number, "changes": diff},
        )
    else:
        version = _next_version(actor=actor, module=module, base=latest, changes=changes)
    signals.announce_version_content(version)
    return version


def _next_version(
    *, actor, module: Module, base: ModuleVersion, changes: dict[str, Any]
) -> ModuleVersion:
    values: dict[str, Any] = {k: getattr(base, k) for k in SCALAR_FIELDS}
    values.update({k: list(getattr(base, k).all()) for k in M2M_FIELDS})
    before = _snapshot(base)
    values.update(changes)
    if values["expires_on"] is not None and values["expires_on"] < timezone.localdate():
        raise InvalidInput(
            "The expiry date carried over from the last version is in the past; set a new one.",
            field="expires_on",
        )
    version = ModuleVersion(module=module, number=base.number + 1, created_by=actor)
    _apply_content(version, values)
    version.save()
    _set_m2m(version, values)
    version.editors.add(actor)
    _finish_version(version)
    after = _snapshot(version)
    diff = _content_diff(before, after)
    audit_record(
        actor=actor,
        action=AuditAction.VERSION_CREATED,
        obj=version,
        module_id=module.pk,
        version_id=version.pk,
        data={
            "version": version.number,
            "based_on": base.number,
            "based_on_status": base.status,
            "changes": diff,
        },
    )
    _carry_claim_links(actor=actor, source=base, target=version)
    return version


def _carry_claim_links(*, actor, source: ModuleVersion, target: ModuleVersion) -> None:
    from .claims import claim_links_carry  # claims.py builds on this module

    claim_links_carry(actor=actor, source=source, target=target)


_DOI = re.compile(r"10\.\d{4,9}/\S+")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:")


def normalize_doi(value: str) -> str:
    """A DOI as ``10.<registrant>/<suffix>``; resolver URLs and ``doi:`` are accepted.

    Raises InvalidInput (field ``doi``) for anything else.
    """
    doi = (value or "").strip()
    for prefix in _DOI_PREFIXES:
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix) :].strip()
            break
    if not doi:
        return ""
    if len(doi) > 200 or not _DOI.fullmatch(doi):
        raise InvalidInput(
            "A DOI looks like 10.1056/NEJMoa2034577 (or https://doi.org/10.1056/...).",
            field="doi",
        )
    return doi


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise InvalidInput("Give a full web address starting with https://.", field="url")
    if len(url) > 500:
        raise InvalidInput("The URL is at most 500 characters.", field="url")
    return url


@transaction.atomic
def reference_create(*, actor, citation: str, url: str = "", pdf=None, doi: str = "") -> Reference:
    """Register a reference (citation, optional DOI, URL or PDF)."""
    if not (can_author(actor) or has_role(actor, Role.MEDICAL)):
        raise PermissionDenied("Only authors and medical reviewers register references.")
    if not citation or not citation.strip():
        raise InvalidInput("Citation is required.", field="citation")
    doi = normalize_doi(doi)
    url = _check_url(url)
    reference = Reference(citation=citation.strip(), doi=doi, url=url, created_by=actor)
    pdf_sha256 = None
    if pdf is not None:
        # Checked as a PDF and named by the server (its sha256, .pdf): the client's
        # name and type never reach storage. The row names the file now and the
        # file is written when the transaction commits, so a rollback (here or in a
        # caller's transaction) leaves no file.
        data = read_reference_pdf(pdf)
        reference.pdf.name = reference_pdf_name(data)
        pdf_sha256 = reference.pdf.name.rsplit("/", 1)[-1].removesuffix(".pdf")
        transaction.on_commit(partial(write_file, reference.pdf.name, data))
    reference.save()
    audit_record(
        actor=actor,
        action=AuditAction.REFERENCE_CREATED,
        obj=reference,
        data={
            "citation": reference.citation,
            "doi": reference.doi,
            "url": reference.url,
            "pdf": bool(reference.pdf),
            "pdf_sha256": pdf_sha256,
        },
    )
    return reference


@transaction.atomic
def tag_create(*, actor, kind: str, slug: str, label: str) -> Tag:
    """Add a term to a controlled vocabulary (admins only)."""
    if not is_admin(actor):
        raise PermissionDenied("Only admins extend the vocabularies.")
    if kind not in TagKind.values:
        raise InvalidInput(f"Unknown vocabulary '{kind}'.", field="kind")
    if Tag.objects.filter(kind=kind, slug=slug).exists():
        raise Conflict(f"'{slug}' already exists in {kind}.", field="slug")
    tag = Tag.objects.create(kind=kind, slug=slug, label=label)
    audit_record(
        actor=actor, action=AuditAction.TAG_CREATED, obj=tag, data={"kind": kind, "slug": slug}
    )
    return tag
