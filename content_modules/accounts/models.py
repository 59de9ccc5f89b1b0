from django.conf import settings
from django.db import models


class AuthFailure(models.Model):
    """A failed password check: a login, a token request or an e-signature."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        TOKEN = "token", "API token"
        SIGNATURE = "signature", "Electronic signature"

    username = models.CharField(max_length=150, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.kind} failure for {self.username} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(models.Model):
    """An API token: only the sha256 of its secret is stored, shown once at issue.

    The secret is 256 random bits, so a plain sha256 (no salt, no slow hash) is
    enough: nobody can guess a preimage, and the lookup stays one indexed
    equality on ``key_hash``, prepared on the hot path (authentication.py).
    A user holds any number of named tokens and revokes each on its own.
    ``scopes`` (space-separated names from ``scopes.SCOPES``) limit what the
    token may call; empty means unrestricted: every right of the account's role.
    It is one more column read by that same statement.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the secret, so a person can tell their tokens apart.
    prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    scopes = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Space-separated scopes; empty: unrestricted (the account's role rights).",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user_id}"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class AttemptCounter(models.Model):
    """Password checks in the current lockout window, for one lock key.

    Keys are ``pair:<username>|<client>`` (the lock), ``user:<username>``
    (the per-username cap that slows) and ``ok:<username>|<client>`` (a client
    that signed in as the user, exempt from the slowing). Counted with single
    ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statements (services.py),
    so parallel attempts each see their own count. Times are Unix seconds.
    """

    key = models.CharField(max_length=255, unique=True)
    window_started = models.FloatField()
    count = models.IntegerField(default=0)
    next_try_at = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class ThrottleHit(models.Model):
    """One request counted by a database-backed throttle (sliding window).

    In PostgreSQL, not the cache: a throttle must hold while Redis is down.
    """

    scope = models.CharField(max_length=32)
    ident = models.CharField(max_length=64)
    at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["scope", "ident", "at"], name="throttle_scope_ident_at")]

    def __str__(self) -> str:
        return f"{self.scope} {self.ident} at {self.at:.0f}"
