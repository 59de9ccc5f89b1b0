"""Helpers for delivery tests: approved modules and engagement events."""

from __future__ import annotations

import uuid
from datetime import date

from django.utils import timezone

from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.library.models import Channel, ModuleVersion, TagKind, VersionStatus
from tests.factories import ensure_vocabulary, force_status, make_module, tag


def approved(author, *, message: str = "efficacy", channels=("email", "web"), **overrides):
    """A module whose first version is approved (forced: these tests read, they do not review)."""
    ensure_vocabulary()
    expires_on = overrides.pop("expires_on", None)
    version = make_module(
        author,
        message=tag(TagKind.MESSAGE, message),
        channels=list(Channel.objects.filter(slug__in=channels)),
        **overrides,
    )
    force_status(version, VersionStatus.APPROVED, expires_on=expires_on)
    return version


def in_state(author, status: str, *, expires_on: date | None = None, **overrides) -> ModuleVersion:
    version = make_module(author, **overrides)
    force_status(version, status, expires_on=expires_on)
    return version


def event(hcp: HCP, version: ModuleVersion, kind: str, *, when=None, channel="email", rec=None):
    return EngagementEvent.objects.create(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module_id=version.module_id,
        version=version,
        type=kind,
        occurred_at=when or timezone.now(),
        channel=channel,
        recommendation_id=rec,
    )


def recommend(client, **body):
    body.setdefault("hcp", "HCP-1")
    return client.post("/api/v1/recommendations", body, format="json")
