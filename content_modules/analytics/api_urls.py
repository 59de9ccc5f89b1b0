"""Content performance API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("analytics/content", api.ContentPerformanceView.as_view(), name="api-analytics-content"),
    path(
        "analytics/content.csv",
        api.ContentPerformanceCSVView.as_view(),
        name="api-analytics-content-csv",
    ),
    path("analytics/unused", api.UnusedView.as_view(), name="api-analytics-unused"),
    path("analytics/fatigued", api.FatiguedView.as_view(), name="api-analytics-fatigued"),
]
