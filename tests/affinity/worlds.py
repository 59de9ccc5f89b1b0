"""Test worlds for the champion/challenger gate: one a model can learn, one it cannot.

``build_learnable_world`` draws engagement from ``affinity.synthetic`` (group
tastes, individual taste, quality, responsiveness), where the model beats
popularity within specialty x segment by several margins. ``build_noise_world``
clicks at random: nothing to learn, so no model may pass the gate there.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
from django.utils import timezone

from content_modules.affinity.embeddings import embed_versions
from content_modules.affinity.models import HCP, EngagementEvent
from content_modules.affinity.synthetic import click_probabilities, exposures
from content_modules.library.models import TagKind, VersionStatus
from tests.factories import ensure_vocabulary, force_status, make_module, tag

MESSAGES = ["efficacy", "safety", "dosing", "mechanism-of-action", "access"]
TONES = ["clinical", "empathetic", "urgent"]
FORMATS = ["text", "image", "infographic"]
SPECIALTIES = ["cardiology", "oncology", "neurology", "general-practice"]
SEGMENTS = ["digital", "field", "academic", "high-prescriber"]


def _modules(author, n_modules: int):
    ensure_vocabulary()
    versions = []
    for i in range(n_modules):
        message, tone, fmt = MESSAGES[i % 5], TONES[(i // 5) % 3], FORMATS[(i // 15) % 3]
        version = make_module(
            author,
            title=f"{tone} {message} {fmt} {i}",
            headline=f"A {tone} {fmt} on {message.replace('-', ' ')} ({i})",
            body=f"This {tone} {fmt} discusses {message.replace('-', ' ')} for your patients.",
            message=tag(TagKind.MESSAGE, message),
            tonality=tag(TagKind.TONALITY, tone),
            format=tag(TagKind.FORMAT, fmt),
        )
        force_status(version, VersionStatus.APPROVED)
        versions.append(version)
    embed_versions([v.pk for v in versions])
    return versions


def _hcps(n_hcps: int, prefix: str):
    return [
        HCP.objects.create(
            external_id=f"{prefix}-{i}",
            specialty=SPECIALTIES[i % len(SPECIALTIES)],
            segment=SEGMENTS[(i // len(SPECIALTIES)) % len(SEGMENTS)],
        )
        for i in range(n_hcps)
    ]


def _store(hcps, versions, drawn) -> None:
    now = timezone.now()
    rows = []
    for x in drawn:
        hcp, version = hcps[x.hcp], versions[x.item]
        at = now - timedelta(days=x.days_ago)
        kinds = ["delivered"] + (["clicked"] if x.clicked else [])
        rows.extend(
            EngagementEvent(
                event_id=uuid.uuid4(),
                hcp=hcp,
                module_id=version.module_id,
                version=version,
                type=kind,
                occurred_at=at + timedelta(minutes=5 * k),
                channel="email",
            )
            for k, kind in enumerate(kinds)
        )
    EngagementEvent.objects.bulk_create(rows, batch_size=2000)


def build_learnable_world(author, *, n_modules: int = 36, n_hcps: int = 240, seed: int = 5):
    """Approved, embedded modules and HCPs whose clicks follow a structure a model can learn."""
    versions = _modules(author, n_modules)
    hcps = _hcps(n_hcps, "HCP-L")
    p = click_probabilities(
        specialty=[h.specialty for h in hcps],
        segment=[h.segment for h in hcps],
        message=[v.message.slug for v in versions],
        tonality=[v.tonality.slug for v in versions],
        format=[v.format.slug for v in versions],
        seed=seed,
        taste_scale=1.4,  # individual taste stronger than the demo's: a clear win, every seed
    )
    _store(hcps, versions, exposures(p, deliveries=(40, 60), seed=seed))
    return versions, hcps


def build_noise_world(author, *, n_modules: int = 20, n_hcps: int = 120, seed: int = 5):
    """The same shape, with every click a coin flip at one rate: nothing to learn."""
    versions = _modules(author, n_modules)
    hcps = _hcps(n_hcps, "HCP-N")
    p = np.full((n_hcps, n_modules), 0.12)
    _store(hcps, versions, exposures(p, seed=seed))
    return versions, hcps


def assert_answered_through_the_gate(request) -> None:
    """The request is answered by one stored model, active exactly when the gate passed it."""
    from content_modules.affinity.models import AffinityModel, ModelStatus

    request.refresh_from_db()
    assert request.finished_at is not None and request.model_version
    model = AffinityModel.objects.get(model_version=request.model_version)
    assert model.status in (ModelStatus.PASSED, ModelStatus.REJECTED)
    assert model.is_active == (model.status == ModelStatus.PASSED)
    assert model.metrics["gate"]["reason"] == model.reason
    expected = "trained and activated" if model.is_active else f"rejected: {model.reason}"[:200]
    assert request.outcome == expected
