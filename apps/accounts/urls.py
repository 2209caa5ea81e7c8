from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="auth-token"),
    path("auth/tokens", api.TokenListView.as_view(), name="auth-token-list"),
    path("auth/tokens/<int:token_id>", api.TokenDetailView.as_view(), name="auth-token-detail"),
    path("me", api.MeView.as_view(), name="me"),
    path("app-passwords", api.AppPasswordListView.as_view(), name="app-password-list"),
    path("app-passwords/<int:app_password_id>", api.AppPasswordDetailView.as_view(), name="app-password-detail"),
]
