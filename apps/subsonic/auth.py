"""Who a /rest/ request is, from the credentials it carries in its parameters (never a session cookie).

- `apiKey` (OpenSubsonic apiKeyAuthentication): a Revenge API token. With `u` as well: 43.
- `u` + `p` (clear or `enc:` hex): the account password, an API token, or an app password.
- `u` + `t` + `s` (md5(password + salt)): app passwords only. The account password is a one-way hash and
  cannot be checked this way: 41, which makes DSub-style clients retry with `p`.
Failed attempts count against the sign-in budget of the token endpoint and the sign-in pages; a client over
budget is refused before its credentials are looked at.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from apps.accounts.models import ApiToken
from apps.accounts.services import (
    AppPasswordCheck,
    api_token_touch,
    app_password_check_plain,
    app_password_check_token,
)
from apps.accounts.throttling import sign_in_blocked_s, sign_in_failed
from apps.accounts.types import User
from apps.playback.models import DEVICE_ID_MAX_LENGTH
from apps.subsonic.params import Params
from apps.subsonic.response import ErrorCode, SubsonicError, missing

DEVICE_PREFIX = "subsonic:"

# Account passwords are checked with Django's hasher (PBKDF2, ~0.3 s on purpose). An app using `p` sends
# it with every request, so a successful check is remembered in this process, keyed by an HMAC of the
# user, their current password hash and the password sent: a changed password misses, nothing clear is kept.
_verified: set[bytes] = set()
_VERIFIED_MAX = 4096


@dataclass(frozen=True)
class RestCaller:
    user: User
    device_id: str  # "subsonic:<client name>": the device of progress, sessions and play queues


def rest_caller(request: HttpRequest, params: Params) -> RestCaller:
    user = _authenticate(request, params)
    client = (params.get("c") or "app").strip() or "app"
    return RestCaller(user=user, device_id=(DEVICE_PREFIX + client)[:DEVICE_ID_MAX_LENGTH])


def _authenticate(request: HttpRequest, params: Params) -> User:
    api_key, username = params.get("apiKey"), params.get("u")
    if api_key is not None and username is not None:
        raise SubsonicError(ErrorCode.CONFLICTING_AUTH, "Send either apiKey or u, not both.")
    if api_key is None and username is None:
        raise missing("u")
    wait_s = sign_in_blocked_s(request)
    if wait_s is not None:
        raise SubsonicError(
            ErrorCode.WRONG_CREDENTIALS, f"Too many failed sign-ins from this address: try again in {wait_s} s."
        )
    if api_key is not None:
        token = _token(api_key)
        if token is None:
            sign_in_failed(request)
            raise SubsonicError(ErrorCode.INVALID_API_KEY, "Invalid API key.")
        api_token_touch(token=token)
        return token.user
    assert username is not None
    token_param, salt, password = params.get("t"), params.get("s"), params.get("p")
    if token_param is not None or salt is not None:
        if not token_param or not salt:
            raise missing("s" if token_param else "t")
        check, found = app_password_check_token(username=username, token=token_param, salt=salt)
        if found is not None:
            return found
        sign_in_failed(request)
        if check is AppPasswordCheck.REVOKED:
            raise SubsonicError(ErrorCode.WRONG_CREDENTIALS, "Wrong username or password.")
        raise SubsonicError(
            ErrorCode.TOKEN_AUTH_NOT_SUPPORTED,
            "Token authentication works with app passwords only (create one in the web player: Connect an app); "
            "send the account password as p.",
        )
    if password is None:
        raise missing("p")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    clear = _decode_password(password)
    if user is not None and clear is not None and _password_matches(user, clear):
        return user
    sign_in_failed(request)
    raise SubsonicError(ErrorCode.WRONG_CREDENTIALS, "Wrong username or password.")


def _token(key: str) -> ApiToken | None:
    if not key.startswith(ApiToken.KEY_PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(key_digest=ApiToken.digest(key)).first()
    return token if token is not None and token.user.is_active else None


def _decode_password(password: str) -> str | None:
    if not password.startswith("enc:"):
        return password
    try:
        return bytes.fromhex(password[4:]).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _password_matches(user: User, password: str) -> bool:
    if password.startswith(ApiToken.KEY_PREFIX):
        token = _token(password)
        if token is not None and token.user_id == user.pk:
            api_token_touch(token=token)
            return True
        return False
    if app_password_check_plain(user=user, password=password):
        return True
    key = hmac.digest(settings.SECRET_KEY.encode(), f"{user.pk}\0{user.password}\0{password}".encode(), hashlib.sha256)
    if key in _verified:
        return True
    if not user.check_password(password):
        return False
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified.add(key)
    return True
