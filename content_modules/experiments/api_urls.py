"""Experiment API routes under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("experiments", api.ExperimentListView.as_view(), name="api-experiments"),
    path("experiments/<int:id>", api.ExperimentDetailView.as_view(), name="api-experiment-detail"),
    path("experiments/<int:id>/stop", api.ExperimentStopView.as_view(), name="api-experiment-stop"),
    path(
        "experiments/<int:id>/archive",
        api.ExperimentArchiveView.as_view(),
        name="api-experiment-archive",
    ),
]
