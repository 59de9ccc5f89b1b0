"""Password checks with brute-force lockout, shared by login, tokens and signatures."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from content_modules.errors import PermissionDenied

from .models import AuthFailure


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def is_locked_out(username: str) -> bool:
    """True when the username has too many recent failures."""
    since = timezone.now() - timedelta(seconds=settings.LOCKOUT_SECONDS)
    recent = AuthFailure.objects.filter(username__iexact=username, occurred_at__gte=since)
    return recent.count() >= settings.LOCKOUT_MAX_FAILURES


def record_failure(
    *, username: str, kind: str, request: HttpRequest | None = None, user=None
) -> AuthFailure:
    """Store one failed password check."""
    return AuthFailure.objects.create(
        username=username[:150], user=user, kind=kind, ip_address=_client_ip(request)
    )


def clear_failures(username: str) -> None:
    """Forget failures after a successful check."""
    AuthFailure.objects.filter(username__iexact=username).delete()


def check_credentials(
    *, username: str, password: str, kind: str, request: HttpRequest | None = None
) -> AbstractBaseUser | None:
    """Authenticate with lockout; None on failure (the failure is recorded)."""
    if is_locked_out(username):
        raise PermissionDenied(
            "Too many failed attempts; try again later.", field="non_field_errors"
        )
    user = authenticate(request, username=username, password=password)
    if user is None:
        record_failure(username=username, kind=kind, request=request)
        return None
    clear_failures(username)
    return user


def verify_password_for_signature(
    *, user: AbstractBaseUser, password: str | None, request: HttpRequest | None = None
) -> None:
    """Re-authenticate a signer at the moment of signing (21 CFR Part 11).

    Raises PermissionDenied (403) on a missing or wrong password; the failure is
    recorded and counts toward the lockout.
    """
    username = user.get_username()
    if is_locked_out(username):
        raise PermissionDenied("Too many failed attempts; signing is locked.", field="password")
    if not password or not user.check_password(password):
        record_failure(
            username=username, kind=AuthFailure.Kind.SIGNATURE, request=request, user=user
        )
        raise PermissionDenied(
            "Password is missing or wrong; the signature was not applied.", field="password"
        )
    clear_failures(username)
