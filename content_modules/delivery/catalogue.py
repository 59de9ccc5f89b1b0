"""The in-process catalogue of approved candidates, refreshed by a generation counter.

Each process (gunicorn worker, Celery worker, test) keeps the approved versions
it may serve in memory: their content ready to render and compact arrays to
gate them by channel, brand, market, message and expiry without a query. On
every request ``current()`` reads the generation row (one primary-key query)
and rebuilds when it moved, so an approval, withdrawal or supersession made by
any process on any machine is seen by the next request everywhere. Expiry
needs no event: ``Catalogue.select`` compares ``expires_on`` with today at
serve time.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from content_modules.library.models import (
    Brand,
    Channel,
    Market,
    ModuleVersion,
    Tag,
    TagKind,
    VersionStatus,
)

from .models import DeliveryGeneration

NEVER = date.max.toordinal()
# The statements the triggers of migration 0002 run: values are never reused.
BUMP_SQL = {
    "postgresql": "UPDATE delivery_deliverygeneration "
    "SET value = nextval('delivery_generation_seq') WHERE id = 1",
    "sqlite": "UPDATE delivery_deliverygeneration SET value = abs(random()) WHERE id = 1",
}


@dataclass(frozen=True)
class Candidate:
    """One approved version, ready to serve."""

    version_id: int
    module_id: int
    number: int
    brand: str
    market: str
    message: str
    channels: tuple[str, ...]
    expires_on: date | None
    approved_at: object
    image_path: str | None
    content: dict

    def is_approved_on(self, today: date) -> bool:
        """Not past its expiry date (approval itself is what put it in the catalogue)."""
        return self.expires_on is None or self.expires_on >= today

    def content_for(self, base_url: str) -> dict:
        """The API's ``content`` object, with the image URL made absolute."""
        image_url = f"{base_url}{self.image_path}" if self.image_path else None
        return {**self.content, "image_url": image_url}


@dataclass
class Catalogue:
    """Approved versions at one generation, with arrays to filter them fast."""

    key: tuple[str, int]
    candidates: list[Candidate]
    brands: dict[str, int]
    markets: dict[str, int]
    channels: dict[str, int]
    messages: dict[str, int]
    by_module: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.candidates
        self.version_ids = np.array([x.version_id for x in c], dtype=np.int64)
        self.module_ids = np.array([x.module_id for x in c], dtype=np.int64)
        self.brand_code = np.array([self.brands.get(x.brand, -1) for x in c], dtype=np.int32)
        self.market_code = np.array([self.markets.get(x.market, -1) for x in c], dtype=np.int32)
        self.message_code = np.array([self.messages.get(x.message, -1) for x in c], dtype=np.int32)
        self.channel_mask = np.array(
            [sum(1 << self.channels[ch] for ch in x.channels if ch in self.channels) for x in c],
            dtype=np.int64,
        )
        self.expires = np.array(
            [x.expires_on.toordinal() if x.expires_on else NEVER for x in c], dtype=np.int64
        )
        self.by_module = {x.module_id: i for i, x in enumerate(c)}

    def select(
        self,
        *,
        today: date,
        channel: str | None = None,
        brand: str | None = None,
        market: str | None = None,
        channels_any: set[str] | None = None,
        exclude_modules: set[int] | frozenset[int] = frozenset(),
    ) -> np.ndarray:
        """Indices of candidates approved today for the channel, brand and market."""
        keep = self.expires >= today.toordinal()
        if channel is not None:
            bit = self.channels.get(channel)
            if bit is None:
                return np.zeros(0, dtype=np.int64)
            keep &= (self.channel_mask & (1 << bit)) != 0
        if channels_any is not None:
            mask = sum(1 << self.channels[ch] for ch in channels_any if ch in self.channels)
            keep &= (self.channel_mask & mask) != 0
        if brand is not None:
            keep &= self.brand_code == self.brands.get(brand, -2)
        if market is not None:
            keep &= self.market_code == self.markets.get(market, -2)
        if exclude_modules:
            keep &= ~np.isin(self.module_ids, np.fromiter(exclude_modules, dtype=np.int64))
        return np.flatnonzero(keep)

    def for_module(self, module_id: int, today: date) -> Candidate | None:
        """The module's version approved today, if any."""
        i = self.by_module.get(module_id)
        if i is None:
            return None
        candidate = self.candidates[i]
        return candidate if candidate.is_approved_on(today) else None


_state: dict[str, Catalogue | None] = {"catalogue": None}
_lock = threading.Lock()


def generation_key() -> tuple[str, int]:
    """The current (epoch, value) of the generation row, creating the row if missing."""
    row = DeliveryGeneration.objects.filter(pk=1).values_list("epoch", "value").first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            DeliveryGeneration.objects.create(pk=1, value=0, epoch=uuid.uuid4().hex)
    except IntegrityError:
        pass  # another process created it first
    return DeliveryGeneration.objects.filter(pk=1).values_list("epoch", "value").get()


def bump() -> None:
    """Move the generation on (to a value never used before), so every process rebuilds."""
    sql = BUMP_SQL.get(connection.vendor)
    if sql is None:
        DeliveryGeneration.objects.filter(pk=1).update(epoch=uuid.uuid4().hex)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    _state["catalogue"] = None


def _content(v: ModuleVersion) -> dict:
    themes = sorted(t.slug for t in v.themes.all())
    return {
        "title": v.title,
        "headline": v.headline,
        "body": v.body,
        "key_message": v.key_message,
        "call_to_action": v.call_to_action,
        "image_url": None,
        "image_alt": v.image_alt_text if v.image_id else None,
        "tags": {
            "message": v.message.slug,
            "theme": themes,
            "tonality": v.tonality.slug,
            "format": v.format.slug,
        },
        "channels": sorted(c.slug for c in v.channels.all()),
        "brand": v.module.brand.slug,
        "market": v.module.market.code,
    }


def build(key: tuple[str, int]) -> Catalogue:
    """Load every approved version (whatever its expiry: that is checked when serving)."""
    versions = (
        ModuleVersion.objects.filter(status=VersionStatus.APPROVED)
        .select_related("module__brand", "module__market", "message", "tonality", "format", "image")
        .prefetch_related("themes", "channels")
        .order_by("module_id")
    )
    candidates = []
    for v in versions:
        content = _content(v)
        candidates.append(
            Candidate(
                version_id=v.pk,
                module_id=v.module_id,
                number=v.number,
                brand=content["brand"],
                market=content["market"],
                message=content["tags"]["message"],
                channels=tuple(content["channels"]),
                expires_on=v.expires_on,
                approved_at=v.approved_at,
                image_path=reverse("api-image", args=[v.image_id, "web"]) if v.image_id else None,
                content=content,
            )
        )
    return Catalogue(
        key=key,
        candidates=candidates,
        brands={s: i for i, s in enumerate(Brand.objects.values_list("slug", flat=True))},
        markets={s: i for i, s in enumerate(Market.objects.values_list("code", flat=True))},
        channels={s: i for i, s in enumerate(Channel.objects.values_list("slug", flat=True))},
        messages={
            s: i
            for i, s in enumerate(
                Tag.objects.filter(kind=TagKind.MESSAGE).values_list("slug", flat=True)
            )
        },
    )


def current(key: tuple[str, int] | None = None) -> Catalogue:
    """The catalogue as of the database's current generation (one query when unchanged).

    A caller that has just read the generation row (``key``) saves that query.
    """
    key = key or generation_key()
    catalogue = _state["catalogue"]
    if catalogue is not None and catalogue.key == key:
        return catalogue
    with _lock:
        catalogue = _state["catalogue"]
        if catalogue is None or catalogue.key != key:
            # The key was read before the rows: a change committed in between
            # moves the generation again, so the next request rebuilds.
            catalogue = build(key)
            _state["catalogue"] = catalogue
    return catalogue


def today() -> date:
    return timezone.localdate()


def reset() -> None:
    """Forget the in-memory catalogue (tests that simulate a fresh process)."""
    _state["catalogue"] = None
