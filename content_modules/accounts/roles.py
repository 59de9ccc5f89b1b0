"""Roles are Django groups; these helpers answer who may do what."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db import models


class Role(models.TextChoices):
    AUTHOR = "author", "Author"
    MEDICAL = "medical_reviewer", "Medical reviewer"
    LEGAL = "legal_reviewer", "Legal reviewer"
    REGULATORY = "regulatory_reviewer", "Regulatory reviewer"
    ENGINE = "engine", "Engine (service account)"
    ADMIN = "admin", "Administrator"


class ReviewRole(models.TextChoices):
    """The roles that sign a version off in MLR review."""

    MEDICAL = "medical", "Medical"
    LEGAL = "legal", "Legal"
    REGULATORY = "regulatory", "Regulatory"


REVIEW_ROLE_GROUP = {
    ReviewRole.MEDICAL: Role.MEDICAL,
    ReviewRole.LEGAL: Role.LEGAL,
    ReviewRole.REGULATORY: Role.REGULATORY,
}

AnyUser = AbstractBaseUser | AnonymousUser


def user_roles(user: AnyUser) -> frozenset[str]:
    """The role names (group names) of a user, cached on the user object."""
    # The user model has groups and is_superuser (PermissionsMixin); AnonymousUser is out.
    if not getattr(user, "is_authenticated", False) or not isinstance(user, PermissionsMixin):
        return frozenset()
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {Role.ADMIN.value}
        setattr(user, "_role_cache", cached)  # noqa: B010 (a cache, not a model field)
    return cached


def has_role(user: AnyUser, *roles: str) -> bool:
    """True when the user holds any of the given roles."""
    return bool(user_roles(user) & {str(r) for r in roles})


def is_admin(user: AnyUser) -> bool:
    return has_role(user, Role.ADMIN)


def is_author(user: AnyUser) -> bool:
    return has_role(user, Role.AUTHOR)


def is_engine(user: AnyUser) -> bool:
    return has_role(user, Role.ENGINE)


def is_reviewer(user: AnyUser) -> bool:
    return has_role(user, Role.MEDICAL, Role.LEGAL, Role.REGULATORY)


def review_roles_of(user: AnyUser) -> list[str]:
    """The review roles (medical, legal, regulatory) a user may fill."""
    return [rr.value for rr, group in REVIEW_ROLE_GROUP.items() if has_role(user, group)]


def can_see_unapproved(user: AnyUser) -> bool:
    """Authors, reviewers and admins see the library; the engine sees approved content only."""
    return has_role(user, Role.AUTHOR, Role.MEDICAL, Role.LEGAL, Role.REGULATORY, Role.ADMIN)
