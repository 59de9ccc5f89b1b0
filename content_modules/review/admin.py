"""Admin views of the review records.

Signatures, reference checks and expiry notices are evidence: read-only.
Reviews, tasks and annotations change only through the actions (which
check permissions, lock rows and audit), so the admin shows them read-only
too; reassigning a task is done through the API or the reviewer pages.
"""

from django.contrib import admin

from .models import Annotation, ExpiryNotice, ReferenceCheck, Review, ReviewTask, Signature


class ReadOnlyAdmin(admin.ModelAdmin):
    """Show rows, never add, change or delete them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReviewTaskInline(admin.TabularInline):
    model = ReviewTask
    fields = ("role", "status", "assignee", "due_at", "decided_by", "decided_at", "comment")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "round", "status", "submitted_by", "submitted_at", "closed_at")
    list_filter = ("status",)
    list_select_related = ("version", "submitted_by")
    inlines = [ReviewTaskInline]


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "role", "status", "assignee", "due_at", "decided_by")
    list_filter = ("status", "role")
    list_select_related = ("version", "assignee", "decided_by")


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "printed_name", "role", "meaning", "signed_at", "content_hash")
    list_filter = ("meaning", "role")
    search_fields = ("printed_name", "content_hash")
    list_select_related = ("version",)


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "field", "start", "end", "author", "resolved", "outdated")
    list_filter = ("field", "resolved", "outdated")
    list_select_related = ("version", "author")


@admin.register(ReferenceCheck)
class ReferenceCheckAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "reference", "task", "checked_by", "checked_at")
    list_select_related = ("version", "reference", "checked_by")


@admin.register(ExpiryNotice)
class ExpiryNoticeAdmin(ReadOnlyAdmin):
    list_display = ("version", "expires_on", "sent_at")
