from django.urls import path

from . import views

app_name = "library"

urlpatterns = [
    path("", views.module_list, name="module_list"),
    path("new/", views.module_create, name="module_create"),
    path("modules/<int:pk>/", views.module_detail, name="module_detail"),
    path("modules/<int:pk>/edit/", views.module_edit, name="module_edit"),
    path("modules/<int:pk>/versions/<int:number>/", views.version_detail, name="version_detail"),
    path("modules/<int:pk>/compare/", views.version_compare, name="version_compare"),
    path("images/<int:pk>/<str:rendition>/", views.image_rendition, name="image"),
    path("references/<int:pk>/pdf/", views.reference_pdf, name="reference_pdf"),
]
