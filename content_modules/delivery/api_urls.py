"""Delivery API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("recommendations", api.RecommendationsView.as_view(), name="api-recommendations"),
    path(
        "recommendations/<uuid:recommendation_id>",
        api.RecommendationDetailView.as_view(),
        name="api-recommendation-detail",
    ),
    path("content", api.ContentListView.as_view(), name="api-content-list"),
    path("content/changes", api.ContentChangesView.as_view(), name="api-content-changes"),
    path("content/<int:module>", api.ContentDetailView.as_view(), name="api-content-detail"),
    path("ping", api.PingView.as_view(), name="api-ping"),
]
