from django.http import HttpRequest

from .roles import is_admin, is_author, is_reviewer, review_roles_of


def roles(request: HttpRequest) -> dict:
    """Expose the signed-in user's roles to templates."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_author": False, "is_reviewer": False, "is_admin_user": False}
    return {
        "is_author": is_author(user) or is_admin(user),
        "is_reviewer": is_reviewer(user),
        "is_admin_user": is_admin(user),
        "my_review_roles": review_roles_of(user),
    }
