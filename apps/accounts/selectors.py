from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import ApiToken, AppPassword
from apps.accounts.types import RequestUser


def api_token_list(*, user: RequestUser) -> QuerySet[ApiToken]:
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def app_password_list(*, user: RequestUser) -> QuerySet[AppPassword]:
    """The user's app passwords that still work, newest first."""
    if not user.is_authenticated:
        return AppPassword.objects.none()
    return AppPassword.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")
