from __future__ import annotations

from typing import cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_token_list, app_password_list
from apps.accounts.serializers import (
    AppPasswordCreateInput,
    AppPasswordCreateOutput,
    AppPasswordOutput,
    TokenCreateInput,
    TokenCreateOutput,
    TokenOutput,
    UserOutput,
)
from apps.accounts.services import api_token_login, api_token_revoke, app_password_create, app_password_revoke
from apps.accounts.throttling import TokenLoginThrottle
from apps.accounts.types import User
from apps.ops.errors import ErrorOutput


class TokenView(APIView):
    """Sign in for a token (POST) or revoke the token this request carries (DELETE)."""

    throttle_scope = "token_login"

    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def perform_authentication(self, request: Request) -> None:
        # Signing in takes credentials from the body: a stale session or token must not interfere, and
        # SessionAuthentication would demand a CSRF token. The token is returned in the body, never set
        # as a cookie, so a cross-site POST gains nothing.
        if request.method != "POST":
            super().perform_authentication(request)

    def get_authenticate_header(self, request: Request) -> str:
        # Wrong credentials are a 401 even though POST runs no authenticator.
        return 'Bearer realm="api"'

    def get_throttles(self) -> list[BaseThrottle]:
        return [TokenLoginThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=TokenCreateInput,
        responses={201: TokenCreateOutput, 429: OpenApiResponse(ErrorOutput, description="Too many sign-ins.")},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = api_token_login(request=request, **data.validated_data)
        body = {"token": key, "token_info": token, "user": token.user}
        return Response(TokenCreateOutput(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, ApiToken):
            raise exceptions.ValidationError("This request is not authenticated by a token; nothing to revoke.")
        api_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(APIView):
    @extend_schema(responses={200: TokenOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response(TokenOutput(api_token_list(user=request.user), many=True).data)


class TokenDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revoke one of your tokens (e.g. a lost phone's)."""
        token = get_object_or_404(api_token_list(user=request.user), pk=token_id)
        api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: UserOutput})
    def get(self, request: Request) -> Response:
        return Response(UserOutput(request.user).data)


class AppPasswordListView(APIView):
    """Passwords for OpenSubsonic apps (/rest/ only): list them, or create one (its password shown once)."""

    @extend_schema(responses={200: AppPasswordOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response(AppPasswordOutput(app_password_list(user=request.user), many=True).data)

    @extend_schema(request=AppPasswordCreateInput, responses={201: AppPasswordCreateOutput})
    def post(self, request: Request) -> Response:
        data = AppPasswordCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = cast(User, request.user)  # IsAuthenticated, the default permission, ran
        row, password = app_password_create(user=user, name=data.validated_data["name"])
        body = {
            "password": password,
            "username": user.get_username(),
            "server_url": request.build_absolute_uri("/"),
            "app_password": row,
        }
        return Response(AppPasswordCreateOutput(body).data, status=status.HTTP_201_CREATED)


class AppPasswordDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, app_password_id: int) -> Response:
        """Revoke one (a lost phone's): apps using it get "wrong credentials" from then on."""
        row = get_object_or_404(app_password_list(user=request.user), pk=app_password_id)
        app_password_revoke(app_password=row)
        return Response(status=status.HTTP_204_NO_CONTENT)
