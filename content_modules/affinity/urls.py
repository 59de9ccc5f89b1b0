from django.urls import path

from . import views

app_name = "affinity"

urlpatterns = [
    path("hcps/", views.hcp_list, name="hcp_list"),
    path("hcps/<str:external_id>/", views.hcp_detail, name="hcp_detail"),
    path("microsegments/", views.microsegments, name="microsegments"),
    path("model/", views.model_page, name="model"),
    path("model/train/", views.model_train_view, name="model_train"),
    path("model/<uuid:model_id>/activate/", views.model_activate_view, name="model_activate"),
]
