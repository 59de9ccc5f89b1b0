"""Token endpoints: obtain (throttled, with lockout) and revoke."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from content_modules.audit.services import audit_record
from content_modules.errors import PermissionDenied

from .models import AuthFailure
from .services import check_credentials


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=512, trim_whitespace=False)


TokenResponse = inline_serializer("TokenResponse", {"token": serializers.CharField()})


class TokenView(APIView):
    """``POST`` swaps a username and password for an API token; ``DELETE`` revokes it."""

    authentication_classes = APIView.authentication_classes
    throttle_scope = "login"

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return []

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponse})
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = check_credentials(
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
            kind=AuthFailure.Kind.TOKEN,
            request=request,
        )
        if user is None or not user.is_active:
            raise PermissionDenied("Wrong username or password.", field="non_field_errors")
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_record(
                actor=user, action="token.issued", object_type="authtoken", object_id=user.pk
            )
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        deleted, _ = Token.objects.filter(user=request.user).delete()
        if deleted:
            audit_record(
                actor=request.user,
                action="token.revoked",
                object_type="authtoken",
                object_id=request.user.pk,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)
