from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import ApiToken
from apps.accounts.types import RequestUser


def api_token_list(*, user: RequestUser) -> QuerySet[ApiToken]:
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-created_at")
