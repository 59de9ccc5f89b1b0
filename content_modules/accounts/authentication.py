"""API token authentication accepting ``Token <key>`` and ``Bearer <key>``.

Only the sha256 of a token is stored (tokens.py); the lookup is by that hash.
"""

from functools import cache

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from contentapp.db import run_prepared

from .models import ApiToken
from .roles import Role
from .scopes import refuse_outside_scopes
from .tokens import hash_key


class BearerOrTokenAuthentication(TokenAuthentication):
    """Hashed API tokens, sent as ``Token <key>`` or ``Bearer <key>``."""

    keywords = (b"token", b"bearer")
    model = ApiToken

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in self.keywords:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            key = auth[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header.") from exc
        return self.authenticate_credentials(key, request)

    def authenticate_credentials(self, key, request=None):
        """The token's user, with its roles read in the same query on PostgreSQL.

        Every API request needs the roles (permissions check them), so reading
        them beside the token and the user saves a round trip per request, and
        plain SQL saves the ORM's compiling (which costs more than the query).
        Elsewhere the ORM reads token and user and the roles load on first use.
        """
        if len(key) > 128:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        digest = hash_key(key)
        if connection.vendor != "postgresql":
            token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
            if token is None:
                raise exceptions.AuthenticationFailed(_("Invalid token."))
            return self._checked(request, token.user, token)
        rows = run_prepared(_token_sql(ApiToken), [digest])
        row = rows[0] if rows else None
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token_fields = [f.attname for f in ApiToken._meta.concrete_fields]
        user_model = ApiToken._meta.get_field("user").related_model
        user_fields = [f.attname for f in user_model._meta.concrete_fields]
        n = len(token_fields)
        token = ApiToken.from_db(connection.alias, token_fields, row[:n])
        user = user_model.from_db(connection.alias, user_fields, row[n : n + len(user_fields)])
        token.user = user
        roles = frozenset(row[-1])
        user._role_cache = roles | {Role.ADMIN.value} if user.is_superuser else roles
        return self._checked(request, user, token)

    @staticmethod
    def _checked(request, user, token):
        if token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(_("Token expired; ask for a new one."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if request is not None:
            refuse_outside_scopes(request, token)
        return (user, token)

    def authenticate_header(self, request):
        return "Token"


@cache
def _token_sql(token_model) -> str:
    """Token, user and the user's group names by the token's hash, in one statement."""
    qn = connection.ops.quote_name
    user_model = token_model._meta.get_field("user").related_model
    groups = user_model._meta.get_field("groups")
    through = groups.remote_field.through._meta
    group_model = groups.related_model
    token_cols = ", ".join(f"t.{qn(f.column)}" for f in token_model._meta.concrete_fields)
    user_cols = ", ".join(f"u.{qn(f.column)}" for f in user_model._meta.concrete_fields)
    user_fk = groups.m2m_column_name()
    group_fk = groups.m2m_reverse_name()
    return (
        f"SELECT {token_cols}, {user_cols}, ARRAY("
        f"SELECT g.{qn('name')} FROM {qn(through.db_table)} ug "
        f"JOIN {qn(group_model._meta.db_table)} g ON g.{qn('id')} = ug.{qn(group_fk)} "
        f"WHERE ug.{qn(user_fk)} = u.{qn('id')}) "
        f"FROM {qn(token_model._meta.db_table)} t "
        f"JOIN {qn(user_model._meta.db_table)} u ON u.{qn('id')} = t.{qn('user_id')} "
        f"WHERE t.{qn('key_hash')} = %s"
    )
