"""Writes for accounts: API tokens, app passwords (OpenSubsonic) and the first admin account."""

from __future__ import annotations

import enum
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import authenticate, get_user_model
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from apps.accounts.app_passwords import app_password_generate, decrypt, encrypt, token_matches
from apps.accounts.models import ApiToken, AppPassword
from apps.accounts.types import User
from apps.ops.net import client_ip

# Refresh `last_used_at` at most this often: one UPDATE per token per interval, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def api_token_issue(*, user: User, name: str = "", client_ip: str | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and the clear key, which is never stored nor shown again."""
    key = ApiToken.KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_digest=ApiToken.digest(key),
        key_hint=key[: len(ApiToken.KEY_PREFIX) + 4],
        created_from_ip=client_ip,
    )
    return token, key


def api_token_login(*, request: HttpRequest, username: str, password: str, name: str = "") -> tuple[ApiToken, str]:
    """Check the credentials (Django's authentication backends) and issue a token for them."""
    user = authenticate(request, username=username, password=password)
    # authenticate() is typed to return any AbstractBaseUser; the backends of settings.py return `User`.
    if not isinstance(user, User):
        raise AuthenticationFailed("Wrong user name or password.", code="invalid_credentials")
    address = client_ip(request)
    return api_token_issue(user=user, name=name, client_ip=str(address) if address else None)


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).delete()


def api_token_touch(*, token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def admin_ensure(*, username: str, password: str | None) -> tuple[User | None, str | None]:
    """Create the first superuser unless one exists.

    Returns (user, password) when it was created now, with the password that was set (generated when
    none was given), or (None, None) when a superuser already existed.
    """
    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None, None
    password = password or secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            user = user_model.objects.create_superuser(username=username, email="", password=password)
    except IntegrityError:
        # A plain user of that name exists: leave it alone rather than promote it silently.
        raise ValueError(f"a user named {username!r} exists and is not a superuser") from None
    return user, password


def app_password_create(*, user: User, name: str) -> tuple[AppPassword, str]:
    """A new app password for `user`; return it and the clear password, shown to the user only now."""
    password = app_password_generate()
    row = AppPassword.objects.create(
        user=user, name=name, secret_encrypted=encrypt(password), hint=password[: AppPassword.HINT_LENGTH]
    )
    return row, password


# Sent with user_id after an app password is revoked: a front-end that remembers recent sign-ins (the
# OpenSubsonic API, apps.subsonic.auth) forgets that user's at once in this process.
app_password_revoked = Signal()


def app_password_revoke(*, app_password: AppPassword) -> None:
    AppPassword.objects.filter(pk=app_password.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    app_password_revoked.send(sender=AppPassword, user_id=app_password.user_id)


class AppPasswordCheck(enum.StrEnum):
    VALID = "valid"
    REVOKED = "revoked"  # it was one of the user's, now revoked: wrong credentials
    NO_MATCH = "no_match"  # none of the user's: maybe the account password, which token auth cannot check


def app_password_check_token(*, username: str, token: str, salt: str) -> tuple[AppPasswordCheck, User | None]:
    """Subsonic token auth (md5(password + salt)) against the app passwords of the active user of that name:
    the verdict, and the user when VALID. One query (the user comes with the rows); touches the one used."""
    revoked = False
    rows = AppPassword.objects.filter(user__username=username, user__is_active=True).select_related("user")
    for row in rows:
        password = decrypt(row.secret_encrypted)
        if password is not None and token_matches(password=password, token=token, salt=salt):
            if row.revoked_at is not None:
                revoked = True
                continue
            _app_password_touch(row)
            return AppPasswordCheck.VALID, row.user
    return (AppPasswordCheck.REVOKED if revoked else AppPasswordCheck.NO_MATCH), None


def app_password_check_plain(*, user: User, password: str) -> bool:
    """A clear app password (Subsonic's `p`) against the user's active ones; touches the one used."""
    hint = password[: AppPassword.HINT_LENGTH]
    for row in AppPassword.objects.filter(user=user, revoked_at__isnull=True, hint=hint):
        stored = decrypt(row.secret_encrypted)
        if stored is not None and hmac.compare_digest(stored.encode(), password.encode()):
            _app_password_touch(row)
            return True
    return False


def _app_password_touch(row: AppPassword) -> None:
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        AppPassword.objects.filter(pk=row.pk).update(last_used_at=now)
