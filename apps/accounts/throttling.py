"""One sign-in budget per client (TOKEN_LOGIN_RATE), shared by every way in: the token endpoint, the web
player's sign-in page and the admin's, so a password guesser gains nothing by switching between them."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest
from rest_framework.throttling import ScopedRateThrottle

from apps.ops.net import client_ip

SCOPE = "token_login"
# An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses): one budget per /64, or a guesser
# rotates through 2^64 addresses. IPv4 clients are keyed by their address.
IPV6_PREFIX_BITS = 64


def client_ident(request: HttpRequest) -> str:
    address = client_ip(request)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX_BITS}", strict=False))
    return str(address)


class TokenLoginThrottle(ScopedRateThrottle):
    """Per client address (see client_ident). DRF's default reads X-Forwarded-For, which any client can
    forge to dodge it."""

    scope_attr = "throttle_scope"

    def get_cache_key(self, request: HttpRequest, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ident(request)}


class _SignInScope:
    throttle_scope = SCOPE


def sign_in_wait_s(request: HttpRequest) -> int | None:
    """Count one sign-in attempt from this client: None when allowed, else the seconds to wait."""
    throttle = TokenLoginThrottle()
    if throttle.allow_request(request, _SignInScope()):
        return None
    return max(1, int(throttle.wait() or 1))
