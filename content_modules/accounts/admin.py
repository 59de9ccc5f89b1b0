from django.contrib import admin

from .forms import AdminLockoutAuthenticationForm
from .models import ApiToken, AuthFailure
from .tokens import token_revoke

# Django's stock admin login checks passwords with no lockout and no throttle.
admin.site.login_form = AdminLockoutAuthenticationForm


@admin.register(AuthFailure)
class AuthFailureAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "username", "kind", "ip_address")
    list_filter = ("kind",)
    search_fields = ("username",)
    readonly_fields = ("occurred_at", "username", "user", "kind", "ip_address")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens by owner, name and the first characters of the secret; deleting revokes.

    Only the hash is stored, so there is no secret to show; tokens are issued
    through ``POST /api/v1/auth/token`` or ``/api/v1/auth/tokens`` (with scopes) or
    ``manage.py issue_api_token`` (the secret is shown once, there).
    """

    list_display = ("name", "user", "prefix", "scope_names", "created_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "prefix", "scopes")
    readonly_fields = ("user", "name", "prefix", "scope_names", "created_at", "expires_at")
    exclude = ("key_hash", "scopes")

    @admin.display(description="scopes")
    def scope_names(self, obj):
        return ", ".join(obj.scope_list) or "unrestricted"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        token_revoke(actor=request.user, token_id=obj.pk, any_owner=True)

    def delete_queryset(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            token_revoke(actor=request.user, token_id=pk, any_owner=True)
