"""URL map: browser pages per app, the REST API under /api/v1/, schema and docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from content_modules.review.work_views import home

api_v1 = [
    path("", include("content_modules.accounts.api_urls")),
    path("", include("content_modules.library.api_urls")),
    path("", include("content_modules.review.api_urls")),
    path("", include("content_modules.affinity.api_urls")),
    path("", include("content_modules.delivery.api_urls")),
    path("", include("content_modules.engagement.api_urls")),
    path("", include("content_modules.webhooks.api_urls")),
    path("", include("content_modules.experiments.api_urls")),
    path("", include("content_modules.analytics.api_urls")),
]

urlpatterns = [
    # Each person lands on their work: reviewers their queue, authors their modules.
    path("", home, name="home"),
    path("accounts/", include("content_modules.accounts.urls")),
    path("library/", include("content_modules.library.urls")),
    path("review/", include("content_modules.review.urls")),
    path("affinity/", include("content_modules.affinity.urls")),
    path("analytics/", include("content_modules.analytics.urls")),
    path("experiments/", include("content_modules.experiments.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

# No route serves MEDIA_ROOT: uploads are fetched only through role-checked views
# (library:image, library:reference_pdf, api-image, api-reference-pdf).
