"""Who a /rest/ request is, from the credentials it carries in its parameters (never a session cookie).

- `apiKey` (OpenSubsonic apiKeyAuthentication): a Revenge API token. With `u` as well: 43.
- `u` + `p` (clear or `enc:` hex): the account password, an API token, or an app password.
- `u` + `t` + `s` (md5(password + salt)): app passwords only. The account password is a one-way hash and
  cannot be checked this way: 41, which makes DSub-style clients retry with `p`.
Failed attempts count against the sign-in budget of the token endpoint and the sign-in pages; a client over
budget is refused before its credentials are looked at.

Apps send their credentials with every request, so a sign-in that succeeded is remembered by this process for
AUTH_CACHE_S, keyed by an HMAC of the exact credentials: the same credentials within that time skip the
budget check and the credential check (two queries and a decryption, 1.3 of the 5.3 ms of CPU of a
getCoverArt under Django's test client, and two PostgreSQL round trips). Nothing clear is kept. Revoking an
app password or an API token, deactivating a user or changing their password is honoured at once in the
process that did it (signals) and within AUTH_CACHE_S in the others, as for API tokens (TOKEN_CACHE_S).
Only a right answer is remembered, so a guesser over budget still learns nothing.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest

from apps.accounts.models import ApiToken
from apps.accounts.services import (
    AppPasswordCheck,
    api_token_touch,
    app_password_check_plain,
    app_password_check_token,
    app_password_revoked,
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


AUTH_CACHE_S = 5.0
AUTH_CACHE_MAX = 4096
_CREDENTIALS = ("apiKey", "u", "p", "t", "s")
_signed_in: dict[bytes, tuple[float, User]] = {}
_signed_in_lock = threading.Lock()


def _clock() -> float:
    return time.monotonic()


def auth_cache_clear() -> None:
    with _signed_in_lock:
        _signed_in.clear()


def _credentials_key(params: Params) -> bytes:
    """An HMAC of every credential parameter as sent (absent and empty told apart; values hold no NUL)."""
    parts = []
    for name in _CREDENTIALS:
        value = params.get(name)
        parts.append(name if value is None else f"{name}={value}")
    text = "\0".join(parts)
    return hmac.digest(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256)


def _recalled(key: bytes) -> User | None:
    with _signed_in_lock:
        found = _signed_in.get(key)
        if found is None:
            return None
        if found[0] <= _clock():
            del _signed_in[key]
            return None
    return copy.copy(found[1])  # each request its own: a view may set attributes on its user


def _remember(key: bytes, user: User) -> None:
    with _signed_in_lock:
        if len(_signed_in) >= AUTH_CACHE_MAX:
            _signed_in.clear()
        _signed_in[key] = (_clock() + AUTH_CACHE_S, copy.copy(user))


def _forget_user(user_id: int | None) -> None:
    with _signed_in_lock:
        for key, (_, user) in list(_signed_in.items()):
            if user.pk == user_id:
                del _signed_in[key]


def _on_user_saved(sender: type, instance: User, **_: object) -> None:
    _forget_user(instance.pk)


def _on_token_deleted(sender: type, instance: ApiToken, **_: object) -> None:
    _forget_user(instance.user_id)


def _on_app_password_revoked(sender: type, user_id: int, **_: object) -> None:
    _forget_user(user_id)


post_save.connect(_on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="subsonic.auth.user_saved")
post_delete.connect(_on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="subsonic.auth.user_deleted")
post_delete.connect(_on_token_deleted, sender=ApiToken, dispatch_uid="subsonic.auth.token_deleted")
app_password_revoked.connect(_on_app_password_revoked, dispatch_uid="subsonic.auth.app_password_revoked")


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
    key = _credentials_key(params)
    user = _recalled(key)
    if user is None:
        user = _check(request, params, api_key, username)
        _remember(key, user)
    return user


def _check(request: HttpRequest, params: Params, api_key: str | None, username: str | None) -> User:
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
