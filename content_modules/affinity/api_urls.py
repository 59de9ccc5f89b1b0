from django.urls import path

from . import api

urlpatterns = [
    # "bulk" before the detail route, which would otherwise take it as an external id.
    path("hcps/bulk", api.HCPBulkView.as_view(), name="hcps-bulk"),
    path("hcps/<str:external_id>", api.HCPDetailView.as_view(), name="hcp-detail"),
    path("events", api.EventsView.as_view(), name="events"),
]
