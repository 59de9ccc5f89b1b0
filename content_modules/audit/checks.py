"""Deploy checks: production refuses to run the audit chain on a default key."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def audit_key_and_checkpoints(app_configs=None, **kwargs):
    """``check --deploy`` fails without AUDIT_HMAC_KEY and AUDIT_CHECKPOINT_DIR."""
    errors = []
    key = settings.AUDIT_HMAC_KEY
    if not key:
        errors.append(
            Error(
                "AUDIT_HMAC_KEY is not set: the audit chain would be keyed with a key "
                "derived from SECRET_KEY.",
                hint="Set AUDIT_HMAC_KEY to a random string of at least 32 characters, kept "
                "out of the database and apart from SECRET_KEY (e.g. in the secret store).",
                id="audit.E001",
            )
        )
    elif len(key) < 32:
        errors.append(Error("AUDIT_HMAC_KEY is shorter than 32 characters.", id="audit.E002"))
    elif key == settings.SECRET_KEY:
        errors.append(
            Error(
                "AUDIT_HMAC_KEY equals SECRET_KEY: rotating SECRET_KEY would break the chain.",
                id="audit.E003",
            )
        )
    if not settings.AUDIT_CHECKPOINT_DIR:
        errors.append(
            Error(
                "AUDIT_CHECKPOINT_DIR is not set: no signed checkpoints of the audit chain are "
                "written outside the database.",
                hint="Point it at an append-only folder the database administrators cannot "
                "rewrite (another host's mount, an object-locked bucket mount).",
                id="audit.E004",
            )
        )
    return errors
