"""A small stored world for the engagement tests: HCPs in two zones, timed deliveries.

Every HCP of ``early_*`` opens what is delivered at 08:00 local time and
ignores the rest; every ``late_*`` HCP opens at 19:00 local. Early HCPs live
in Tokyo, late ones in London, so their UTC hours differ from their local
ones. ``rep_email`` is the early group's channel (clicks), ``web`` the late
group's. Deliveries fall on the hour, spread over the 8 weeks before ``now``
and over every channel.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import UTC, datetime, timedelta

import numpy as np

from content_modules.affinity.models import HCP, EngagementEvent
from tests.delivery.helpers import approved

CHANNELS = ("email", "rep_email", "web")


def build(author, *, n_per_group: int = 12, deliveries: int = 60, seed: int = 0, now=None):
    """Approved modules, HCPs and their events; answers (modules, early HCPs, late HCPs)."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    modules = [approved(author, channels=CHANNELS) for _ in range(4)]
    groups = {
        "early": ("cardiology", "digital", "Asia/Tokyo", 8, "rep_email"),
        "late": ("nephrology", "field", "Europe/London", 19, "web"),
    }
    made: dict[str, list[HCP]] = {}
    rows = []
    for name, (specialty, segment, zone, hour, channel) in groups.items():
        made[name] = []
        tz = zoneinfo.ZoneInfo(zone)
        for i in range(n_per_group):
            hcp = HCP.objects.create(
                external_id=f"{name}-{i}", specialty=specialty, segment=segment, timezone=zone
            )
            made[name].append(hcp)
            for _ in range(deliveries):
                day = int(rng.integers(8, 56))
                local = (now - timedelta(days=day)).astimezone(tz)
                at_hour = hour if rng.random() < 0.35 else int(rng.integers(0, 24))
                when = local.replace(hour=at_hour, minute=0, second=0, microsecond=0)
                ch = CHANNELS[int(rng.integers(len(CHANNELS)))]
                version = modules[int(rng.integers(len(modules)))]
                rows.append(_event(hcp, version, "delivered", when, ch))
                if abs(at_hour - hour) <= 1 and rng.random() < 0.8:
                    rows.append(_event(hcp, version, "opened", when + timedelta(minutes=20), ch))
                    if ch == channel and rng.random() < 0.7:
                        rows.append(
                            _event(hcp, version, "clicked", when + timedelta(minutes=25), ch)
                        )
                elif rng.random() < 0.05:
                    rows.append(_event(hcp, version, "opened", when + timedelta(hours=2), ch))
    EngagementEvent.objects.bulk_create(rows, batch_size=2000)
    return modules, made["early"], made["late"]


def _event(hcp, version, kind, when, channel):
    return EngagementEvent(
        event_id=uuid.uuid4(),
        hcp=hcp,
        module_id=version.module_id,
        version=version,
        type=kind,
        occurred_at=when,
        channel=channel,
    )


def train():
    """Fit and store an engagement model on everything stored (no affinity model needed)."""
    from content_modules.affinity.learning.training import load_dataset
    from content_modules.engagement.training import engagement_model_train

    return engagement_model_train(load_dataset())
