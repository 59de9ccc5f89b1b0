"""Django admin for logged recommendations: what was shown, at which rank, and what followed."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from content_modules.affinity.models import EngagementEvent
from content_modules.library.admin import ReadOnlyModelAdmin

from .models import Recommendation, RecommendationItem


class RecommendationItemInline(admin.TabularInline):
    model = RecommendationItem
    extra = 0
    can_delete = False
    fields = (
        "rank",
        "slot",
        "module",
        "version",
        "score",
        "propensity",
        "explored",
        "frequency_capped",
        "events",
    )
    readonly_fields = fields
    raw_id_fields = ("module", "version")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="events joined")
    def events(self, item: RecommendationItem) -> str:
        joined = EngagementEvent.objects.filter(
            recommendation_id=item.recommendation_id, module_id=item.module_id
        ).order_by("occurred_at")
        rows = ((e.type, f"{e.occurred_at:%Y-%m-%d %H:%M}") for e in joined)
        return format_html_join(", ", "{} at {}", rows) or "-"


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "hcp_external_id",
        "created_at",
        "policy",
        "explored",
        "cold_start",
        "model_version",
    )
    list_filter = ("policy", "explored", "cold_start")
    search_fields = ("=id", "hcp_external_id")
    date_hierarchy = "created_at"
    raw_id_fields = ("hcp",)
    inlines = [RecommendationItemInline]
