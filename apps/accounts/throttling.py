"""One sign-in budget per client (TOKEN_LOGIN_RATE), shared by every way in: the token endpoint, the web
player's sign-in page and the admin's, so a password guesser gains nothing by switching between them.

Attempts are counted in PostgreSQL (SignInAttempt), not in the Redis cache: sign-in must work while Redis
is down, and the budget must keep limiting then. A sliding window like DRF's: an attempt is allowed while
fewer than N were allowed in the last window; refused attempts are not counted.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from apps.accounts.models import SignInAttempt
from apps.ops.net import client_ip

SCOPE = "token_login"
# An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses): one budget per /64, or a guesser
# rotates through 2^64 addresses. IPv4 clients are keyed by their address.
IPV6_PREFIX_BITS = 64
# First key of the two-key advisory locks that serialize one client's attempts (count, then insert).
_LOCK_NAMESPACE = 0x5167_1F
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Rows of clients that never came back are removed by the next attempt of anyone, at most this often.
_PURGE_EVERY_S = 60.0
_last_purge = 0.0


def client_ident(request: HttpRequest) -> str:
    address = client_ip(request)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX_BITS}", strict=False))
    return str(address)


def sign_in_rate() -> tuple[int, int]:
    """(attempts, window in seconds) from TOKEN_LOGIN_RATE, e.g. 10/min → (10, 60)."""
    # djangorestframework-stubs type the rates as numbers; DRF (and settings.py) hold "N/period" strings.
    rate: str = api_settings.DEFAULT_THROTTLE_RATES[SCOPE]  # type: ignore[assignment]
    number, unit = rate.split("/")
    return int(number), _UNIT_SECONDS[unit[0]]


def sign_in_attempt(*, client: str) -> float | None:
    """Count one sign-in attempt of `client`: None when allowed, else the seconds until one is."""
    global _last_purge
    allowed, window_s = sign_in_rate()
    now = timezone.now()
    cutoff = now - timedelta(seconds=window_s)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Two requests of one client must not both see N-1 and both pass.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, client])
        if time.monotonic() - _last_purge > _PURGE_EVERY_S:
            _last_purge = time.monotonic()
            SignInAttempt.objects.filter(at__lte=cutoff).delete()
        else:
            SignInAttempt.objects.filter(client=client, at__lte=cutoff).delete()
        recent = list(SignInAttempt.objects.filter(client=client).order_by("at").values_list("at", flat=True)[:allowed])
        if len(recent) >= allowed:
            return max((recent[0] - cutoff).total_seconds(), 0.0)
        SignInAttempt.objects.create(client=client, at=now)
    return None


class TokenLoginThrottle(BaseThrottle):
    """DRF's face of the sign-in budget, per client address (see client_ident). DRF's own throttles key on
    X-Forwarded-For, which any client can forge, and keep their counts in the cache (Redis)."""

    def __init__(self) -> None:
        self._wait_s: float | None = None

    def allow_request(self, request: HttpRequest, view: object) -> bool:
        self._wait_s = sign_in_attempt(client=client_ident(request))
        return self._wait_s is None

    def wait(self) -> float | None:
        return self._wait_s


def sign_in_wait_s(request: HttpRequest) -> int | None:
    """Count one sign-in attempt from this client: None when allowed, else the seconds to wait."""
    wait_s = sign_in_attempt(client=client_ident(request))
    return None if wait_s is None else max(1, int(wait_s + 0.999))


def sign_in_blocked_s(request: HttpRequest) -> int | None:
    """Without counting an attempt: the seconds this client must wait before its next sign-in, or None.

    For ways in that send credentials with every request (the OpenSubsonic API), where only the failed
    ones are counted (sign_in_failed): checked before the credentials, so a guesser over budget learns
    nothing, even from a right guess.
    """
    allowed, window_s = sign_in_rate()
    cutoff = timezone.now() - timedelta(seconds=window_s)
    recent = list(
        SignInAttempt.objects.filter(client=client_ident(request), at__gt=cutoff)
        .order_by("at")
        .values_list("at", flat=True)[:allowed]
    )
    if len(recent) < allowed:
        return None
    return max(1, int((recent[0] - cutoff).total_seconds() + 0.999))


def sign_in_failed(request: HttpRequest) -> None:
    """Count one failed sign-in of this client (see sign_in_blocked_s)."""
    sign_in_attempt(client=client_ident(request))
