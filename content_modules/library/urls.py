from django.urls import path

from . import reference_pages, views

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
    # Reference library and claim links (reference_pages.py)
    path("references/", reference_pages.reference_list, name="reference_list"),
    path("references/<int:pk>/", reference_pages.reference_detail, name="reference_detail"),
    path(
        "references/<int:pk>/pdf/inline/",
        reference_pages.reference_pdf_inline,
        name="reference_pdf_inline",
    ),
    path(
        "modules/<int:pk>/versions/<int:number>/claim-links/",
        reference_pages.claim_link_create_view,
        name="claim_link_create",
    ),
    path(
        "claim-links/<int:pk>/delete/",
        reference_pages.claim_link_delete_view,
        name="claim_link_delete",
    ),
]
