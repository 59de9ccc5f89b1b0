from django.urls import path

from .api import TokenDetailView, TokenListView, TokenView

urlpatterns = [
    path("auth/token", TokenView.as_view(), name="api-token"),
    path("auth/tokens", TokenListView.as_view(), name="api-tokens"),
    path("auth/tokens/<int:id>", TokenDetailView.as_view(), name="api-token-detail"),
]
