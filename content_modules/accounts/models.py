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
