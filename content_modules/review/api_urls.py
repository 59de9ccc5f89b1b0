"""Review API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("modules/<int:id>/submit", api.ModuleSubmitView.as_view(), name="api-module-submit"),
    path("modules/<int:id>/withdraw", api.ModuleWithdrawView.as_view(), name="api-module-withdraw"),
    path("modules/<int:id>/recall", api.ModuleRecallView.as_view(), name="api-module-recall"),
    path(
        "modules/<int:id>/annotations",
        api.ModuleAnnotationsView.as_view(),
        name="api-module-annotations",
    ),
    path(
        "modules/<int:id>/signatures",
        api.ModuleSignaturesView.as_view(),
        name="api-module-signatures",
    ),
    path(
        "modules/<int:id>/audit.csv",
        api.ModuleAuditExportView.as_view(),
        name="api-module-audit-csv",
    ),
    path("audit.csv", api.AuditExportView.as_view(), name="api-audit-csv"),
    path("reviews", api.ReviewListView.as_view(), name="api-review-list"),
    path("reviews/<int:id>", api.ReviewDetailView.as_view(), name="api-review-detail"),
    path("reviews/<int:id>/decision", api.ReviewDecisionView.as_view(), name="api-review-decision"),
    path("reviews/<int:id>/reassign", api.ReviewReassignView.as_view(), name="api-review-reassign"),
    path(
        "annotations/<int:id>/resolve",
        api.AnnotationResolveView.as_view(),
        name="api-annotation-resolve",
    ),
    path(
        "annotations/<int:id>/address",
        api.AnnotationAddressView.as_view(),
        name="api-annotation-address",
    ),
    path(
        "versions/<int:id>/review-record",
        api.ReviewRecordView.as_view(),
        name="api-version-review-record",
    ),
    path(
        "versions/<int:id>/review-record.csv",
        api.ReviewRecordCSVView.as_view(),
        name="api-version-review-record-csv",
    ),
]
