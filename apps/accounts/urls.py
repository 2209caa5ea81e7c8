from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="auth-token"),
    path("auth/tokens", api.TokenListView.as_view(), name="auth-token-list"),
    path("auth/tokens/<int:token_id>", api.TokenDetailView.as_view(), name="auth-token-detail"),
    path("me", api.MeView.as_view(), name="me"),
]
