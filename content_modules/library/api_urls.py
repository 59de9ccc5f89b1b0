"""Authoring API routes under /api/v1/ (the review workflow adds its own in review/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("vocabularies/<str:kind>", api.VocabularyView.as_view(), name="api-vocabulary"),
    path("modules", api.ModuleListView.as_view(), name="api-module-list"),
    path("modules/<int:id>", api.ModuleDetailView.as_view(), name="api-module-detail"),
    path("modules/<int:id>/versions", api.ModuleVersionsView.as_view(), name="api-module-versions"),
    path("modules/<int:id>/audit", api.ModuleAuditView.as_view(), name="api-module-audit"),
    path(
        "modules/<int:id>/claim-links",
        api.ModuleClaimLinksView.as_view(),
        name="api-module-claim-links",
    ),
    path("claim-links/<int:id>", api.ClaimLinkDetailView.as_view(), name="api-claim-link-detail"),
    path("references", api.ReferenceListView.as_view(), name="api-reference-list"),
    path("references/<int:id>/pdf", api.ReferencePdfView.as_view(), name="api-reference-pdf"),
    path("images/<int:id>/<str:rendition>", api.ImageFileView.as_view(), name="api-image"),
]
