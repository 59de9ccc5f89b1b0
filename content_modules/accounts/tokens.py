"""API token actions: issue (the secret shown once), list, revoke; the hash stored.

Why our own model rather than django-rest-knox or DRF's ``authtoken``: DRF's
token keeps the secret in plain text, one per user; knox hashes, but looks a
token up by an 8-character prefix and then compares digests in Python (more
than one row may share the prefix), refreshes expiry with a write per request
when asked to, and brings its own authentication class and views. The hot
path here authenticates with one prepared statement (token, user and roles);
a sha256 of a 256-bit secret keeps that one indexed equality lookup, and the
whole feature is this file and one model.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import Conflict, InvalidInput, NotFound

from .models import ApiToken
from .scopes import parse_scopes

DEFAULT_NAME = "API token"


def hash_key(key: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(
    *,
    user,
    name: str = "",
    expires_in_days: int | None = None,
    scopes: list[str] | None = None,
    actor=None,
) -> tuple[ApiToken, str]:
    """Issue a new token for ``user``: the row and the secret (never stored, shown once).

    ``scopes`` (names from ``scopes.SCOPES``) limit the token; none given, it is
    unrestricted (every right of the user's role). ``actor`` is who asked (an
    admin issuing for a service account), the user by default.

    The expiry is ``API_TOKEN_EXPIRY_DAYS`` unless a shorter one is asked for;
    a user holds at most ``API_TOKEN_MAX_PER_USER`` live tokens (409 beyond, so
    a script that logs in in a loop is told rather than filling the table).
    """
    name = (name or "").strip() or DEFAULT_NAME
    if len(name) > 100:
        raise InvalidInput("A token name has at most 100 characters.", field="name")
    max_days = settings.API_TOKEN_EXPIRY_DAYS
    days = max_days if expires_in_days is None else expires_in_days
    if not 1 <= days <= max_days:
        raise InvalidInput(f"A token lives between 1 and {max_days} days.", field="expires_in_days")
    scope_names = parse_scopes(scopes)
    now = timezone.now()
    key = secrets.token_urlsafe(32)
    with transaction.atomic():
        # Expired tokens are dead already; dropping them keeps the count honest.
        ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
        live = ApiToken.objects.select_for_update().filter(user=user)
        if len(live) >= settings.API_TOKEN_MAX_PER_USER:
            raise Conflict(
                f"You already hold {settings.API_TOKEN_MAX_PER_USER} tokens; "
                "revoke one (DELETE /api/v1/auth/tokens/{id}) before asking for another.",
                field="non_field_errors",
            )
        token = ApiToken.objects.create(
            user=user,
            name=name,
            key_hash=hash_key(key),
            prefix=key[:8],
            expires_at=now + timedelta(days=days),
            scopes=" ".join(scope_names),
        )
        audit_record(
            actor=actor or user,
            action=AuditAction.TOKEN_ISSUED,
            obj=token,
            data={
                "name": token.name,
                "prefix": token.prefix,
                "expires_at": token.expires_at,
                "scopes": scope_names,
                "owner": user.pk,
            },
        )
    return token, key


def tokens_of(user):
    """The user's live tokens, newest first."""
    return ApiToken.objects.filter(user=user, expires_at__gt=timezone.now())


def token_revoke(*, actor, token_id: int, any_owner: bool = False) -> None:
    """Revoke one of the actor's own tokens (404 for anyone else's, unless ``any_owner``).

    ``any_owner`` is for the admin site, whose own permissions let an admin in.
    """
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update().filter(pk=token_id)
        token = (tokens if any_owner else tokens.filter(user=actor)).first()
        if token is None:
            raise NotFound("No such token.", field="id")
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_REVOKED,
            obj=token,
            data={"name": token.name, "prefix": token.prefix, "owner": token.user_id},
        )
        token.delete()
