"""Django admin for HCPs and the affinity data.

HCP profiles may be corrected by hand (audited). Engagement events are the
engine's record of what happened, embeddings and trained models are derived
data: all three are view-only, and binary blobs are summarised, never dumped.
"""

from __future__ import annotations

from django.contrib import admin

from content_modules.library.admin import AuditedModelAdmin, ReadOnlyModelAdmin

from .models import HCP, AffinityModel, EngagementEvent, TrainingRequest, VersionEmbedding


@admin.register(HCP)
class HCPAdmin(AuditedModelAdmin):
    list_display = (
        "external_id",
        "specialty",
        "segment",
        "region",
        "preferred_channel",
        "timezone",
    )
    list_filter = ("specialty", "segment", "preferred_channel")
    search_fields = ("external_id",)
    readonly_fields = ("created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        # Deleting an HCP would cascade away the engagement history models learn from.
        return False


@admin.register(EngagementEvent)
class EngagementEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "occurred_at",
        "type",
        "hcp",
        "module_title",
        "version",
        "channel",
        "received_at",
        "processed_at",
    )
    list_filter = ("type", "channel")
    list_select_related = ("hcp", "module__latest", "version")
    search_fields = ("hcp__external_id", "event_id")
    date_hierarchy = "occurred_at"
    # Selects over every HCP, module and version would load whole tables.
    raw_id_fields = ("hcp", "module", "version")

    @admin.display(description="module", ordering="module_id")
    def module_title(self, obj: EngagementEvent) -> str:
        # Module.__str__ queries the versions; the denormalised latest pointer does not.
        title = obj.module.latest.title if obj.module.latest else ""
        return f"Module {obj.module_id}: {title}"


@admin.register(VersionEmbedding)
class VersionEmbeddingAdmin(ReadOnlyModelAdmin):
    list_display = ("version", "model_name", "dim", "created_at")
    list_filter = ("model_name",)
    list_select_related = ("version",)
    search_fields = ("version__title", "model_name")
    fields = (
        "version",
        "model_name",
        "model_sha256",
        "dim",
        "vector_preview",
        "text_sha256",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="vector")
    def vector_preview(self, obj: VersionEmbedding) -> str:
        values = obj.as_array()
        head = ", ".join(f"{v:.4f}" for v in values[:6])
        return f"[{head}, …] ({len(values)} float32)"


@admin.register(AffinityModel)
class AffinityModelAdmin(ReadOnlyModelAdmin):
    list_display = ("model_version", "trained_at", "is_active", "status", "n_events", "n_hcps")
    list_filter = ("is_active", "status")
    search_fields = ("model_version",)
    date_hierarchy = "trained_at"
    fields = (
        "id",
        "model_version",
        "trained_at",
        "is_active",
        "status",
        "reason",
        "override_reason",
        "override_by",
        "n_events",
        "n_hcps",
        "params",
        "metrics",
        "embedding_model",
        "embedding_model_sha256",
        "artifact_size",
    )
    readonly_fields = fields

    @admin.display(description="artifact")
    def artifact_size(self, obj: AffinityModel) -> str:
        return f"{len(bytes(obj.artifact or b''))} bytes"


@admin.register(TrainingRequest)
class TrainingRequestAdmin(ReadOnlyModelAdmin):
    list_display = (
        "requested_at",
        "requested_by",
        "queued_at",
        "started_at",
        "finished_at",
        "model_version",
        "outcome",
    )
    list_select_related = ("requested_by",)
    date_hierarchy = "requested_at"
