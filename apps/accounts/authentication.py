from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models.signals import post_delete, post_save
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_touch

# A token found valid is trusted for this long by the process that found it, without asking PostgreSQL
# again (the lookup was most of a small request's database time). A token revoked or a user deactivated
# elsewhere (another worker, the admin) is refused within this delay; in this process at once (signals).
TOKEN_CACHE_S = 5.0
TOKEN_CACHE_MAX = 4096
_cache: dict[str, tuple[float, ApiToken]] = {}
_cache_lock = threading.Lock()


def _clock() -> float:
    return time.monotonic()


def token_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(digest: str) -> ApiToken | None:
    with _cache_lock:
        found = _cache.get(digest)
        if found is None:
            return None
        if found[0] <= _clock():
            del _cache[digest]
            return None
        return found[1]


def _remember(digest: str, token: ApiToken) -> None:
    with _cache_lock:
        if len(_cache) >= TOKEN_CACHE_MAX:
            _cache.clear()
        _cache[digest] = (_clock() + TOKEN_CACHE_S, token)


def _forget(*, token_id: int | None = None, user_id: int | None = None) -> None:
    with _cache_lock:
        for digest, (_, token) in list(_cache.items()):
            if token.pk == token_id or token.user_id == user_id:
                del _cache[digest]


def _token_deleted(sender: type, instance: ApiToken, **_: object) -> None:
    _forget(token_id=instance.pk)


def _user_saved(sender: type, instance: AbstractBaseUser, **_: object) -> None:
    _forget(user_id=instance.pk)


post_delete.connect(_token_deleted, sender=ApiToken, dispatch_uid="accounts.token_cache.token_deleted")
post_save.connect(_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.token_cache.user_saved")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` (or `Token <key>`) → the token's user; `request.auth` is the token."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected `Bearer <token>`.")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not key.startswith(ApiToken.KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        digest = ApiToken.digest(key)
        token = _cached(digest)
        if token is None:
            token = ApiToken.objects.select_related("user").filter(key_digest=digest).first()
            if token is None or not token.user.is_active:
                raise exceptions.AuthenticationFailed("Invalid or revoked token.")
            _remember(digest, token)
        api_token_touch(token=token)
        # Each request its own copies: a view may set attributes on request.user, and threads share the cache.
        user = copy.copy(token.user)
        token = copy.copy(token)
        token.user = user
        return user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to anonymous requests.
        return 'Bearer realm="api"'
