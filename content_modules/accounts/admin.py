from django.contrib import admin

from .models import AuthFailure


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
