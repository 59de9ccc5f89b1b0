"""Password checks with brute-force lockout, shared by login, tokens and signatures.

The lock is per (username, client address): ``LOCKOUT_MAX_FAILURES`` failed
checks from one client lock that username for that client for
``LOCKOUT_SECONDS``, so a stranger who types a reviewer's name five times
locks only himself. Across all clients a username is capped: past
``LOCKOUT_USERNAME_SLOW_AFTER`` failures in the window it is slowed to one
password check every ``LOCKOUT_SLOW_SECONDS`` (not blocked), except from a
client that signed in as that user before (``LOCKOUT_KNOWN_CLIENT_DAYS``).
Signing is re-authentication of a user already signed in, so only the
(user, client) lock applies to it.

Every attempt is counted *before* its password is checked, by one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (a row lock held for one
statement), so parallel attempts each see a distinct count and no more than
the allowed number ever reach the password hasher.
"""

from __future__ import annotations

import math
import time
from functools import cache

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.http import HttpRequest

from content_modules.errors import InvalidInput, PermissionDenied

from .clients import client_ip
from .models import AttemptCounter, AuthFailure


class SignatureRefused(PermissionDenied):
    """A signing attempt refused: wrong or missing password, or the signer is locked."""

    def __init__(self, message: str, *, reason: str, ip: str | None) -> None:
        super().__init__(message, field="password")
        self.reason = reason
        self.ip = ip


# --- counters ------------------------------------------------------------------------------


@cache
def _sql() -> dict[str, str]:
    qn = connection.ops.quote_name
    t = qn(AttemptCounter._meta.db_table)
    key, started, count, next_try = (
        qn(c) for c in ("key", "window_started", "count", "next_try_at")
    )
    return {
        # Count one attempt; a window older than its length starts again at 1.
        "bump": (
            f"INSERT INTO {t} ({key}, {started}, {count}, {next_try}) VALUES (%s, %s, 1, 0) "
            f"ON CONFLICT ({key}) DO UPDATE SET "
            f"{count} = CASE WHEN {t}.{started} <= %s THEN 1 ELSE {t}.{count} + 1 END, "
            f"{started} = CASE WHEN {t}.{started} <= %s THEN %s ELSE {t}.{started} END "
            f"RETURNING {count}, {started}"
        ),
        "unbump": (
            f"UPDATE {t} SET {count} = CASE WHEN {count} > 0 THEN {count} - 1 ELSE 0 END "
            f"WHERE {key} = %s"
        ),
        # Take the next slow-down slot: only one caller per slot finds the row.
        "claim": (
            f"UPDATE {t} SET {next_try} = %s WHERE {key} = %s AND {next_try} <= %s "
            f"RETURNING {next_try}"
        ),
        "next_try": f"SELECT {next_try} FROM {t} WHERE {key} = %s",
        "reset": f"DELETE FROM {t} WHERE {key} = %s",
        "mark": (
            f"INSERT INTO {t} ({key}, {started}, {count}, {next_try}) VALUES (%s, %s, 0, 0) "
            f"ON CONFLICT ({key}) DO UPDATE SET {started} = %s"
        ),
        "known": f"SELECT 1 FROM {t} WHERE {key} = %s AND {started} > %s",
    }


def _run(name: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_sql()[name], params)
        return cursor.fetchall() if cursor.description else []


def _bump(key: str, now: float, window: float) -> tuple[int, float]:
    """Count one attempt on ``key``: (attempts in the window, when the window started)."""
    expired = now - window
    count, started = _run("bump", [key, now, expired, expired, now])[0]
    return count, started


def _keys(username: str, ip: str | None) -> tuple[str, str, str]:
    name = username.strip().lower()[:150]
    client = ip or "unknown"
    return f"pair:{name}|{client}", f"user:{name}", f"ok:{name}|{client}"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _take_pair_attempt(pair_key: str, now: float) -> float | None:
    """Count an attempt against the (username, client) lock; the wait when locked."""
    count, started = _bump(pair_key, now, settings.LOCKOUT_SECONDS)
    if count > settings.LOCKOUT_MAX_FAILURES:
        return started + settings.LOCKOUT_SECONDS - now
    return None


def _take_username_attempt(user_key: str, ok_key: str, now: float) -> float | None:
    """Count an attempt against the per-username cap; the wait when slowed."""
    count, _ = _bump(user_key, now, settings.LOCKOUT_SECONDS)
    if count <= settings.LOCKOUT_USERNAME_SLOW_AFTER:
        return None
    known_since = now - settings.LOCKOUT_KNOWN_CLIENT_DAYS * 86400
    if _run("known", [ok_key, known_since]):
        return None
    if _run("claim", [now + settings.LOCKOUT_SLOW_SECONDS, user_key, now]):
        return None
    _run("unbump", [user_key])
    rows = _run("next_try", [user_key])
    return max(1.0, (rows[0][0] if rows else now) - now)


def record_failure(
    *, username: str, kind: str, request: HttpRequest | None = None, user=None
) -> AuthFailure:
    """Log one failed password check (the log is kept; the lock lives in the counters)."""
    return AuthFailure.objects.create(
        username=username[:150], user=user, kind=kind, ip_address=client_ip(request)
    )


def _is_text(value: str | None) -> bool:
    # A lone surrogate (JSON "\ud800") cannot be encoded for the database or the hasher.
    try:
        (value or "").encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_text(value: str | None, field: str) -> None:
    if not _is_text(value):
        raise InvalidInput("This holds characters that are not valid text.", field=field)


# --- sign-in -------------------------------------------------------------------------------


def check_credentials(
    *, username: str, password: str, kind: str, request: HttpRequest | None = None
) -> AbstractBaseUser | None:
    """Authenticate under the lockout; None on a wrong password (the failure is logged).

    Raises PermissionDenied, saying how long to wait, when this client is
    locked for the username or the username is slowed.
    """
    _require_text(username, "username")
    _require_text(password, "password")
    ip = client_ip(request)
    pair_key, user_key, ok_key = _keys(username, ip)
    now = time.time()
    locked_for = _take_pair_attempt(pair_key, now)
    if locked_for is not None:
        raise PermissionDenied(
            f"Too many failed attempts from your address; try again in {_minutes(locked_for)}.",
            field="non_field_errors",
        )
    slowed_for = _take_username_attempt(user_key, ok_key, now)
    if slowed_for is not None:
        _run("unbump", [pair_key])
        raise PermissionDenied(
            "This account has had many failed sign-ins from elsewhere, so it is slowed "
            f"to one try every {settings.LOCKOUT_SLOW_SECONDS} seconds; "
            f"try again in {math.ceil(slowed_for)} seconds.",
            field="non_field_errors",
        )
    user = authenticate(request, username=username, password=password)
    if user is None:
        record_failure(username=username, kind=kind, request=request)
        return None
    _run("reset", [pair_key])
    _run("unbump", [user_key])
    _run("mark", [ok_key, now, now])
    return user


# --- signing -------------------------------------------------------------------------------


def verify_password_for_signature(
    *, user: AbstractBaseUser, password: str | None, request: HttpRequest | None = None
) -> None:
    """Re-authenticate a signer at the moment of signing (21 CFR Part 11).

    Raises SignatureRefused (403) on a missing or wrong password or when this
    client is locked for the signer; a wrong password is logged and counts
    toward the lock. On success the session, if any, gets a new key.
    """
    username = user.get_username()
    ip = client_ip(request)
    pair_key, _, _ = _keys(username, ip)
    locked_for = _take_pair_attempt(pair_key, time.time())
    if locked_for is not None:
        raise SignatureRefused(
            "Too many failed attempts; signing is locked for "
            f"{_minutes(locked_for)}. The signature was not applied.",
            reason="locked",
            ip=ip,
        )
    if not password or not _is_text(password) or not user.check_password(password):
        record_failure(
            username=username, kind=AuthFailure.Kind.SIGNATURE, request=request, user=user
        )
        raise SignatureRefused(
            "Password is missing or wrong; the signature was not applied.",
            reason="missing_password" if not password else "wrong_password",
            ip=ip,
        )
    _run("reset", [pair_key])
    rotate_session(request)


def rotate_session(request) -> None:
    """Give a signed-in browser session a new key (after signing), keeping its data."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key and "_auth_user_id" in session:
        session.cycle_key()


def attempts_prune(now: float | None = None) -> dict[str, int]:
    """Delete throttle hits and lock counters whose windows are over (hourly, by beat)."""
    from .models import ThrottleHit

    now = time.time() if now is None else now
    hits, _ = ThrottleHit.objects.filter(at__lt=now - 86400).delete()
    over = now - settings.LOCKOUT_SECONDS
    counters, _ = (
        AttemptCounter.objects.exclude(key__startswith="ok:")
        .filter(window_started__lt=over, next_try_at__lt=now)
        .delete()
    )
    known, _ = AttemptCounter.objects.filter(
        key__startswith="ok:", window_started__lt=now - settings.LOCKOUT_KNOWN_CLIENT_DAYS * 86400
    ).delete()
    return {"throttle_hits": hits, "counters": counters + known}
