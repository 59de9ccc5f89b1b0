"""Small helpers that build test data through the real domain actions."""

from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import date, datetime, timedelta

from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from content_modules.accounts.models import ApiToken
from content_modules.accounts.roles import Role
from content_modules.accounts.tokens import hash_key
from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.library.models import (
    Brand,
    Channel,
    Market,
    Module,
    ModuleVersion,
    Tag,
    TagKind,
    VersionStatus,
)
from content_modules.library.services import VersionContent, module_create

PASSWORD = "correct-horse-battery-staple"
CHANNELS = [
    ("email", "Email"),
    ("rep_email", "Rep-triggered email"),
    ("web", "Web"),
    ("rep_visit", "Rep visit"),
    ("webinar", "Webinar"),
]
_counter = itertools.count(1)

VOCABULARY = {
    TagKind.MESSAGE: ["efficacy", "safety", "dosing", "mechanism-of-action", "access"],
    TagKind.THEME: ["outcomes", "quality-of-life", "adherence"],
    TagKind.TONALITY: ["clinical", "empathetic", "urgent"],
    TagKind.FORMAT: ["text", "image", "infographic"],
}


def make_user(role: str | None = None, *, username: str | None = None, **extra) -> User:
    """A user holding one role (a group name from Role), with PASSWORD."""
    n = next(_counter)
    username = username or f"{role or 'user'}{n}"
    first, last = (
        extra.pop("first_name", role.title() if role else "Test"),
        extra.pop("last_name", f"User{n}"),
    )
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        first_name=first,
        last_name=last,
        email=f"{username}@example.test",
        **extra,
    )
    if role:
        # get_or_create: a transactional test's flush empties the tables that the
        # data migrations filled (groups, channels), whatever test ran before.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def new_token(user: User, name: str = "test") -> str:
    """A fresh API token for the user (its secret), written directly, without an audit entry."""
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=hash_key(key),
        prefix=key[:8],
        expires_at=timezone.now() + timedelta(days=1),
    )
    return key


def api_client(user: User | None = None) -> APIClient:
    """An API client authenticated with a token of the user's (as the engine would be)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {new_token(user)}")
    return client


def restore_migration_data() -> None:
    """Recreate what the data migrations insert (role groups, channels) if missing."""
    for role in Role.values:
        Group.objects.get_or_create(name=role)
    for slug, label in CHANNELS:
        Channel.objects.get_or_create(slug=slug, defaults={"label": label})


def ensure_vocabulary() -> None:
    """Create the small test vocabulary, channels, brand and market if missing."""
    for slug, label in CHANNELS:
        Channel.objects.get_or_create(slug=slug, defaults={"label": label})
    for kind, slugs in VOCABULARY.items():
        for slug in slugs:
            Tag.objects.get_or_create(
                kind=kind, slug=slug, defaults={"label": slug.replace("-", " ").title()}
            )
    Brand.objects.get_or_create(slug="cardiozen", defaults={"name": "CardioZen"})
    Brand.objects.get_or_create(slug="neurolift", defaults={"name": "NeuroLift"})
    Market.objects.get_or_create(code="UK", defaults={"name": "United Kingdom"})
    Market.objects.get_or_create(code="DE", defaults={"name": "Germany"})


def tag(kind: str, slug: str) -> Tag:
    return Tag.objects.get(kind=kind, slug=slug)


def content(**overrides) -> VersionContent:
    """Valid version content; override any field by keyword."""
    ensure_vocabulary()
    n = next(_counter)
    values = {
        "title": f"Module {n}",
        "headline": f"Headline {n}: fewer cardiac events",
        "body": "In the pivotal trial, patients on CardioZen had fewer major cardiac events.",
        "key_message": "CardioZen reduced major cardiac events by 24% versus placebo.",
        "call_to_action": "Read the full study",
        "message": tag(TagKind.MESSAGE, "efficacy"),
        "tonality": tag(TagKind.TONALITY, "clinical"),
        "format": tag(TagKind.FORMAT, "text"),
        "themes": [tag(TagKind.THEME, "outcomes")],
        "channels": list(Channel.objects.filter(slug__in=["email", "web"])),
        "references": [],
        "expires_on": timezone.localdate() + timedelta(days=365),
        "image": None,
    }
    values.update(overrides)
    return VersionContent(**values)


def make_module(
    author: User | None = None,
    *,
    brand: str = "cardiozen",
    market: str = "UK",
    variant_of: Module | None = None,
    **content_overrides,
) -> ModuleVersion:
    """A new module with its first draft version, created through module_create."""
    ensure_vocabulary()
    author = author or make_user(Role.AUTHOR)
    return module_create(
        actor=author,
        brand=Brand.objects.get(slug=brand),
        market=Market.objects.get(code=market),
        content=content(**content_overrides),
        variant_of=variant_of,
    )


def force_status(version: ModuleVersion, status: str, *, expires_on: date | None = None) -> None:
    """Put a version in a state directly, for tests of reads (not of the workflow).

    Writes with a queryset update, as the workflow's own transitions do, so
    the frozen-content guard is not involved.
    """
    fields = {"status": status, "status_changed_at": timezone.now()}
    if status == VersionStatus.APPROVED:
        fields["approved_at"] = timezone.now()
    if expires_on is not None:
        fields["expires_on"] = expires_on
    ModuleVersion.objects.filter(pk=version.pk).update(**fields)
    version.refresh_from_db()


def pdf_bytes(comment: bytes = b"") -> bytes:
    """A small, structurally valid one-page PDF (correct xref offsets, trailer with /Root).

    ``comment`` goes into a PDF comment line after the header, where a polyglot
    hides an HTML or SVG page: the file stays a valid PDF.
    """
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    if comment:
        out += b"%" + comment.replace(b"\n", b" ") + b"\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def engagement_event(
    hcp: HCP, version: ModuleVersion, kind: str, when: datetime, channel: str = "email"
) -> EngagementEvent:
    """An unsaved event of one HCP on one version (for ``bulk_create``)."""
    return EngagementEvent(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module_id=version.module_id,
        version=version,
        type=kind,
        occurred_at=when,
        channel=channel,
    )
