"""Token scopes: what a machine's API token may do, on top of its account's role.

A token issued with scopes may call only the endpoints whose scope it holds;
a token issued without scopes is *unrestricted* and acts with every right of
its account's role (what every token did before scopes existed). Scopes only
narrow: a token of the engine account with ``model:train`` still cannot do
what the engine role may not.

Enforcement, in two places so that a new endpoint is closed by default:

- views of the engine contract declare ``required_scopes`` (HTTP method to
  scope) and list ``TokenHasScope`` in their permissions, which answers 403
  naming the missing scope;
- a scoped token sent to a view that declares no ``required_scopes`` at all
  (authoring, review, admin endpoints) is refused by the authentication class
  (``refuse_outside_scopes``), also with 403.

Sessions (people in the browser) carry no token and are never scope-limited.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from content_modules.errors import InvalidInput

# Scope name -> what it opens (shown by the API and the admin).
SCOPES: dict[str, str] = {
    "content:read": "Read approved content (GET /content, /content/{module}, /content/changes).",
    "hcps:read": "Read HCP profiles and their learned affinity and engagement profile.",
    "hcps:write": "Create and update HCP profiles (PUT /hcps/{id}, POST /hcps/bulk).",
    "events:write": "Send engagement events (POST /events).",
    "recommend": "Ask for recommendations and next best actions, read one back.",
    "model:read": "Read the affinity model in use and its history.",
    "model:train": "Start a training run; activate a stored model (admins).",
    "experiments:read": "Read experiments and their results per arm (GET /experiments).",
    "experiments:write": "Create, stop and archive experiments (admins).",
}

# A view's ``required_scopes`` maps methods to one of SCOPES, or to this marker for
# methods any token may call (listing and revoking one's own tokens, the ping).
ANY_TOKEN = ""


def parse_scopes(values: Iterable[str] | None, *, field: str = "scopes") -> list[str]:
    """Validated, de-duplicated, sorted scope names; 400 naming the first unknown one."""
    seen: set[str] = set()
    for index, value in enumerate(values or []):
        name = str(value).strip()
        if name not in SCOPES:
            raise InvalidInput(
                f"Unknown scope {name!r}; known scopes: {', '.join(SCOPES)}.",
                field=f"{field}.{index}",
            )
        seen.add(name)
    return sorted(seen)


def token_scopes(auth) -> frozenset[str] | None:
    """The scopes of the request's token; None when it is not scope-limited."""
    scopes = getattr(auth, "scope_list", None)
    if not scopes:
        return None
    return frozenset(scopes)


def _required(view, method: str) -> str | None:
    required = getattr(view, "required_scopes", None)
    if required is None:
        return None
    if method in ("HEAD", "OPTIONS"):
        method = "GET" if "GET" in required else method
    return required.get(method)


def refuse_outside_scopes(request, token) -> None:
    """403 for a scoped token on a view (or method) that names no scope for it.

    Called by the authentication class, which runs for every API view, so a view
    that forgot to declare scopes is closed to scoped tokens rather than open.
    """
    scopes = token_scopes(token)
    if scopes is None or request.method == "OPTIONS":
        return
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if _required(view, request.method) is None:
        raise exceptions.PermissionDenied(
            "This token is limited to the scopes "
            f"{', '.join(sorted(scopes))}; this endpoint needs an unrestricted token "
            "or a person's session."
        )


class TokenHasScope(BasePermission):
    """Passes for sessions and unrestricted tokens; a scoped token needs the view's scope.

    The view declares ``required_scopes = {"GET": "content:read", ...}``; the
    refusal (403) names the missing scope.
    """

    message = "This token lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        scopes = token_scopes(request.auth)
        if scopes is None or request.method == "OPTIONS":
            return True
        needed = _required(view, request.method)
        if needed == ANY_TOKEN or (needed is not None and needed in scopes):
            return True
        if needed is not None:
            self.message = (
                f"This token lacks the scope '{needed}' (it holds: {', '.join(sorted(scopes))})."
            )
        return False
