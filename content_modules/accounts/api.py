"""Token endpoints: obtain (throttled, with lockout), list and revoke."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.errors import InvalidInput, PermissionDenied

from .models import ApiToken, AuthFailure
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


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret, only the secret's first characters."""

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at"]


TokenResponse = inline_serializer(
    "TokenResponse",
    {
        "token": serializers.CharField(help_text="The secret; shown this once, never again."),
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
    },
)


class TokenView(APIView):
    """``POST`` swaps a username and password for a new API token; ``DELETE`` revokes
    the token the request is made with."""

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
            raise PermissionDenied("Wrong username or password.", field="non_field_errors")
        token, key = token_issue(
            user=user, name=data.get("name", ""), expires_in_days=data.get("expires_in_days")
        )
        return Response(
            {"token": key, "id": token.pk, "name": token.name, "expires_at": token.expires_at}
        )

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


class TokenListView(APIView):
    """``GET`` lists the caller's live API tokens (without their secrets)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The caller's live API tokens (without their secrets)",
        responses={200: TokenSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Tokens",
                value=[
                    {
                        "id": 7,
                        "name": "engine-prod",
                        "prefix": "3q2-7b1X",
                        "created_at": "2026-12-02T09:00:00Z",
                        "expires_at": "2027-03-02T09:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request):
        return Response(TokenSerializer(tokens_of(request.user), many=True).data)


class TokenDetailView(APIView):
    """``DELETE`` revokes one of the caller's tokens; the others keep working."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Revoke one of the caller's tokens",
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
    )
    def delete(self, request, id: int):
        token_revoke(actor=request.user, token_id=id)
        return Response(status=status.HTTP_204_NO_CONTENT)
