"""Token endpoints: obtain (throttled, with lockout), issue with scopes, list and revoke."""

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from content_modules.library.serializers import ErrorSerializer

from .models import ApiToken, AuthFailure
from .roles import is_admin
from .scopes import ANY_TOKEN, SCOPES
from .services import check_credentials
from .throttling import LoginRateThrottle
from .tokens import token_issue, token_revoke, tokens_of


# Component "TokenRequest" (request components get "Request" appended, not twice).
@extend_schema_serializer(component_name="Token")
class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=512, trim_whitespace=False)
    name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="What the token is for."
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Shorter than the default lifetime, if wanted."
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SCOPES)),
        required=False,
        max_length=len(SCOPES),
        help_text="What the token may call; left out or empty: unrestricted "
        "(every right of the account's role).",
    )


class TokenIssueSerializer(serializers.Serializer):
    """A new token asked for by an authenticated caller (no password: the credential is)."""

    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SCOPES)),
        required=False,
        max_length=len(SCOPES),
        help_text="What the token may call; left out or empty: unrestricted "
        "(every right of the account's role).",
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Shorter than the default lifetime, if wanted."
    )
    username = serializers.CharField(
        max_length=150,
        required=False,
        help_text="Admins only: issue the token to this account (e.g. a service account).",
    )


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret, only the secret's first characters."""

    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SCOPES)),
        source="scope_list",
        read_only=True,
        help_text="Empty: unrestricted (every right of the account's role).",
    )
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "user", "prefix", "scopes", "created_at", "expires_at"]


TokenResponse = inline_serializer(
    "TokenResponse",
    {
        "token": serializers.CharField(help_text="The secret; shown this once, never again."),
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "scopes": serializers.ListField(child=serializers.ChoiceField(choices=list(SCOPES))),
        "expires_at": serializers.DateTimeField(),
    },
)


def _issued(token: ApiToken, key: str) -> dict:
    return {
        "token": key,
        "id": token.pk,
        "name": token.name,
        "scopes": token.scope_list,
        "expires_at": token.expires_at,
    }


class TokenView(APIView):
    """``POST`` swaps a username and password for a new API token; ``DELETE`` revokes
    the token the request is made with."""

    # Any token may revoke itself; the POST checks a password, not the token.
    required_scopes = {"POST": ANY_TOKEN, "DELETE": ANY_TOKEN}

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if self.request.method == "POST":
            return [LoginRateThrottle()]
        return []

    @extend_schema(
        summary="Swap a username and password for an API token",
        request=TokenRequestSerializer,
        responses={200: TokenResponse},
        examples=[
            OpenApiExample(
                "Credentials",
                value={"username": "engine", "password": "...", "name": "engine-prod"},
                request_only=True,
            ),
            OpenApiExample(
                "Token",
                value={
                    "token": "3q2-7b1X9vR0aE5kT8mN4pLwQz6yH2cJ",
                    "id": 7,
                    "name": "engine-prod",
                    "expires_at": "2027-03-02T09:00:00Z",
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = check_credentials(
            username=data["username"],
            password=data["password"],
            kind=AuthFailure.Kind.TOKEN,
            request=request,
        )
        if user is None or not user.is_active:
            raise Unauthenticated("Wrong username or password.", field="non_field_errors")
        token, key = token_issue(
            user=user,
            name=data.get("name", ""),
            expires_in_days=data.get("expires_in_days"),
            scopes=data.get("scopes"),
        )
        return Response(_issued(token, key))

    @extend_schema(
        summary="Revoke the token this request is made with", request=None, responses={204: None}
    )
    def delete(self, request):
        if not isinstance(request.auth, ApiToken):
            raise InvalidInput(
                "This request carries no API token; revoke one by id with "
                "DELETE /api/v1/auth/tokens/{id}.",
                field="non_field_errors",
            )
        token_revoke(actor=request.user, token_id=request.auth.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _account(request, username: str | None):
    """The caller, or (admins only) the account named by ``username``."""
    if not username or username == request.user.get_username():
        return request.user
    if not is_admin(request.user):
        raise PermissionDenied(
            "Only administrators may manage another account's tokens.", field="username"
        )
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No active user {username!r}.", field="username")
    return user


class TokenListView(APIView):
    """``GET`` lists live API tokens (without their secrets); ``POST`` issues one, with
    scopes, to the caller or (admins) to another account such as the engine's.

    Issuing needs an unrestricted credential (a session, or a token without scopes):
    a scoped token may not mint a broader one.
    """

    permission_classes = [IsAuthenticated]
    required_scopes = {"GET": ANY_TOKEN}

    @extend_schema(
        summary="The caller's live API tokens (without their secrets); admins: any account's",
        parameters=[
            OpenApiParameter(
                "username", str, OpenApiParameter.QUERY, description="Admins: another account."
            )
        ],
        responses={200: TokenSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Tokens",
                value=[
                    {
                        "id": 7,
                        "name": "engine-prod",
                        "user": "engine",
                        "prefix": "3q2-7b1X",
                        "scopes": ["content:read", "recommend"],
                        "created_at": "2026-12-02T09:00:00Z",
                        "expires_at": "2027-03-02T09:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request):
        user = _account(request, request.query_params.get("username"))
        tokens = tokens_of(user).select_related("user")
        return Response(TokenSerializer(tokens, many=True).data)

    @extend_schema(
        summary="Issue a named token, with scopes, to the caller or (admins) another account",
        request=TokenIssueSerializer,
        responses={
            201: TokenResponse,
            409: OpenApiResponse(
                ErrorSerializer, description="The account holds the most live tokens allowed."
            ),
        },
        examples=[
            OpenApiExample(
                "An ingest token for the engine (admin)",
                value={
                    "username": "engine",
                    "name": "ingest",
                    "scopes": ["events:write", "hcps:write"],
                    "expires_in_days": 30,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Issued",
                value={
                    "token": "3q2-7b1X...",
                    "id": 8,
                    "name": "ingest",
                    "scopes": ["events:write", "hcps:write"],
                    "expires_at": "2027-01-01T09:00:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        serializer = TokenIssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = _account(request, data.get("username"))
        token, key = token_issue(
            user=user,
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            scopes=data.get("scopes"),
            actor=request.user,
        )
        # A token has no page of its own: it is listed (without its secret) there.
        location = request.build_absolute_uri(reverse("api-tokens"))
        return Response(
            _issued(token, key), status=status.HTTP_201_CREATED, headers={"Location": location}
        )


class TokenDetailView(APIView):
    """``DELETE`` revokes one token; the others keep working. Admins may revoke any
    account's token (a service account's, say); everyone else only their own."""

    permission_classes = [IsAuthenticated]
    required_scopes = {"DELETE": ANY_TOKEN}

    @extend_schema(
        summary="Revoke one of the caller's tokens (admins: anyone's)",
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
    )
    def delete(self, request, id: int):
        token_revoke(actor=request.user, token_id=id, any_owner=is_admin(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)
