"""Idempotent calls: a retry with the same key answers the first answer, once logged.

An engine that times out on ``POST /api/v1/recommendations`` (or training,
or any endpoint that logs an answer) cannot know whether the answer was
logged. It sends an ``Idempotency-Key`` header (or a ``request_id`` body
field) and retries with the same key: within ``IDEMPOTENCY_TTL_HOURS`` (24)
the retry answers the stored answer (same ``recommendation_id``, same items)
and logs nothing. Keys are scoped per caller (the token's user) and per
endpoint. A key reused with a different body is refused (422,
``idempotency_key_reused``), so a client bug is not silently answered with
someone else's answer.

How concurrency is made safe: the claim of a key is an INSERT into
``delivery_idempotentrequest`` under a unique (user, scope, key) constraint,
in the same transaction as the work and its stored answer. A concurrent retry's
INSERT waits on the unique index for the first transaction: when that commits,
the retry fails the constraint, reads the committed answer and replays it;
when it rolls back (bad input, a crash), the retry's claim goes through and it
does the work itself. Errors are never stored: a 4xx is recomputed on retry.

Reusing it for another endpoint (next-best-actions): call ``run`` with a
scope of its own, the validated body as the fingerprint, and a ``compute``
that does the work and answers ``(status, body)``; see ``RecommendationsView``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from content_modules.errors import DomainError, InvalidInput

from .models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(r"\A[\x21-\x7e]{1,255}\Z")
KEY_RULE = "1-255 printable ASCII characters without spaces (a UUID is a good key)."

SCHEMA_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the call safe to retry: a retry with the same key by the same caller "
        f"within {getattr(settings, 'IDEMPOTENCY_TTL_HOURS', 24)} hours answers the first "
        "answer (header `Idempotent-Replayed: true`) and logs nothing new. The same key "
        f"with a different body answers 422 (`idempotency_key_reused`). {KEY_RULE}"
    ),
)


class IdempotencyKeyReused(DomainError):
    """The key was used before with another body (422)."""

    status_code = 422
    code = "idempotency_key_reused"


@dataclass
class Outcome:
    status: int
    body: dict
    replayed: bool


def key_from(request, body_key: str | None = None) -> str | None:
    """The call's key, from the header or the body's ``request_id``; 400 if malformed."""
    header = request.headers.get(HEADER)
    if header is not None and body_key is not None and header != body_key:
        raise InvalidInput(
            f"Differs from the {HEADER} header; send one key, or the same in both.",
            field="request_id",
        )
    key = header if header is not None else body_key
    if key is None:
        return None
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        field = "request_id" if header is None else HEADER
        raise InvalidInput(f"Must be {KEY_RULE}", field=field)
    return key


def fingerprint(body) -> str:
    """sha256 of the body as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(body, cls=JSONEncoder, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _as_sent(body: dict) -> dict:
    """The body as the client reads it (UUIDs, dates as JSON text): replays are identical."""
    return json.loads(json.dumps(body, cls=JSONEncoder))


def run(
    *,
    actor,
    scope: str,
    key: str | None,
    body,
    compute: Callable[[], tuple[int, dict]],
    after_commit: Callable[[dict], dict] | None = None,
) -> Outcome:
    """Answer ``compute()`` once per (actor, scope, key); replay it for retries.

    ``compute`` runs inside the transaction that claims the key, so what it
    writes commits with the stored answer or not at all; anything that must
    wait for the commit (sending a task) goes in ``after_commit``, which may
    amend the answer (the amended answer is stored too).
    """
    if key is None:
        status, data = compute()
        if after_commit is not None:
            data = after_commit(data)
        return Outcome(status, data, replayed=False)
    digest = fingerprint(body)
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    mine = IdempotentRequest.objects.filter(user=actor, scope=scope, key=key)
    with transaction.atomic():
        mine.filter(created_at__lt=cutoff).delete()  # expired: the key is free again
        try:
            with transaction.atomic():
                row = IdempotentRequest.objects.create(
                    user=actor,
                    scope=scope,
                    key=key,
                    request_hash=digest,
                    status_code=0,
                    response={},
                )
        except IntegrityError:
            row = None
        if row is None:
            # Another call holds the key; its transaction has committed (the INSERT
            # waited for it), so its answer is there to read.
            first = mine.get()
            if first.request_hash != digest:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was used for a different request within the last "
                    f"{settings.IDEMPOTENCY_TTL_HOURS} hours; use a new key for a new request.",
                    field=HEADER,
                )
            return Outcome(first.status_code, first.response, replayed=True)
        status, data = compute()
        data = _as_sent(data)
        row.status_code, row.response = status, data
        row.save(update_fields=["status_code", "response"])
    if after_commit is not None:
        amended = _as_sent(after_commit(data))
        if amended != data:
            IdempotentRequest.objects.filter(pk=row.pk).update(response=amended)
        data = amended
    return Outcome(status, data, replayed=False)


def response(outcome: Outcome) -> Response:
    """The answer of an idempotent call, marked ``Idempotent-Replayed: true`` when replayed."""
    answer = Response(outcome.body, status=outcome.status)
    if outcome.replayed:
        answer[REPLAYED_HEADER] = "true"
    return answer


def prune() -> int:
    """Delete answers older than the replay window (beat, hourly)."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
