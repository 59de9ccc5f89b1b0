from django.urls import path

from . import views

app_name = "library"

urlpatterns = [
    path("", views.module_list, name="module_list"),
    path("new/", views.module_create, name="module_create"),
]
