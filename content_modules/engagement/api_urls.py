"""Engagement API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path(
        "hcps/<str:external_id>/engagement-profile",
        api.EngagementProfileView.as_view(),
        name="hcp-engagement-profile",
    ),
    path("next-best-actions", api.NextBestActionsView.as_view(), name="api-next-best-actions"),
]
