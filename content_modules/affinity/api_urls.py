from django.urls import path

from . import api, model_api

urlpatterns = [
    # "bulk" before the detail route, which would otherwise take it as an external id.
    path("hcps/bulk", api.HCPBulkView.as_view(), name="hcps-bulk"),
    path("hcps/<str:external_id>", api.HCPDetailView.as_view(), name="hcp-detail"),
    path("events", api.EventsView.as_view(), name="events"),
    path("modules/similar", api.SimilarModulesView.as_view(), name="modules-similar"),
    path(
        "hcps/<str:external_id>/affinity",
        model_api.HCPAffinityView.as_view(),
        name="hcp-affinity",
    ),
    path("affinity/train", model_api.TrainView.as_view(), name="affinity-train"),
    path("affinity/model", model_api.ModelView.as_view(), name="affinity-model"),
    path("affinity/models", model_api.ModelListView.as_view(), name="affinity-models"),
    path(
        "affinity/models/<uuid:model_id>/activate",
        model_api.ModelActivateView.as_view(),
        name="affinity-model-activate",
    ),
]
