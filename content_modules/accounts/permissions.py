"""Reusable DRF permission classes built on the roles in ``roles.py``.

Every API view starts from default deny (``IsAuthenticated`` in settings) and
adds some of these; DRF requires every class in ``permission_classes`` to
pass. List them rather than combining them with ``&``/``|``: DRF's operators
drop each class's ``message``, and the caller then reads a generic refusal.
For example ``[IsAuthenticated, CanSeeLibrary, AuthorsWrite]``: anyone who may
see the library reads, only authors and admins write. Object-level rules that
need domain knowledge (who may edit which module) stay in the domain actions.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import Role, can_see_unapproved, has_role, is_admin, is_engine, is_reviewer


class ReadOnly(BasePermission):
    """Allow only safe methods (GET, HEAD, OPTIONS); combine with ``|`` to open reads."""

    message = "This endpoint is read-only for your role."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS


class AuthorsWrite(BasePermission):
    """Reads pass; writes (POST, PUT, PATCH, DELETE) need the author or admin role."""

    message = "Only authors and administrators may create or change content."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or has_role(request.user, Role.AUTHOR, Role.ADMIN)


class AdminsWrite(BasePermission):
    """Reads pass; writes need the admin role (e.g. extending a vocabulary)."""

    message = "Only administrators may change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_admin(request.user)


class IsAdmin(BasePermission):
    """Administrators only (the ``admin`` group or a superuser)."""

    message = "Only administrators may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class IsAuthorOrAdmin(BasePermission):
    """Content authors and administrators: the people who create and edit modules."""

    message = "Only authors and administrators may do this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.AUTHOR, Role.ADMIN)


class IsEngineOrAdmin(BasePermission):
    """The personalization engine's service account and administrators."""

    message = "Only the engine service account and administrators may do this."

    def has_permission(self, request, view) -> bool:
        return is_engine(request.user) or is_admin(request.user)


class CanSeeLibrary(BasePermission):
    """Authors, reviewers and admins, who see unapproved content; not the engine.

    The engine service account reads only approved content (through
    ``/api/v1/content``), so it is refused here with 403.
    """

    message = "Your role may not see the content library; it reads approved content only."

    def has_permission(self, request, view) -> bool:
        return can_see_unapproved(request.user)


class IsReviewer(BasePermission):
    """Medical, legal or regulatory reviewers (admins are not reviewers by role)."""

    message = "Only MLR reviewers may do this."

    def has_permission(self, request, view) -> bool:
        return is_reviewer(request.user)
