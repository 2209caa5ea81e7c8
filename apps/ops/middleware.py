"""Request plumbing for running behind a reverse proxy, and the headers every response carries."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ipware import get_client_ip
from python_ipware.modern.parsers import split_proxy_chain, unwrap_ipv4

# Headers a proxy sets about the client. From an untrusted peer they are the client's own words and are
# removed before anything (Django's SECURE_PROXY_SSL_HEADER, DRF, our views) can read them.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)
PEER_ADDR_META = "REVENGE_PEER_ADDR"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    try:
        return unwrap_ipv4(ipaddress.ip_address(value))
    except ValueError:
        return None


def _trusted(address: Address | None) -> bool:
    return address is not None and any(address in network for network in settings.REVENGE_TRUSTED_PROXIES)


def forwarded_client(request: HttpRequest) -> str | None:
    """The client address from X-Forwarded-For of a request whose peer is a trusted proxy.

    Walks the chain from our side: every trailing hop inside REVENGE_TRUSTED_PROXIES is one of ours, the
    next one is the client (whatever lies left of it was written by the client and proves nothing).
    django-ipware parses the header (ports, brackets, IPv4-mapped IPv6) and picks the hop at that
    position; its own `proxy_trusted_ips` matches one entry per hop in order, which cannot express
    "any number of hops inside these networks", so the count is worked out here.
    """
    chain = split_proxy_chain(request.META.get("HTTP_X_FORWARDED_FOR"), strict=True)
    if not chain:
        return None
    hops = 0
    for hop in reversed(chain[1:]):
        if not _trusted(hop):
            break
        hops += 1
    client, _routable = get_client_ip(
        request, proxy_count=hops, request_header_order=("HTTP_X_FORWARDED_FOR",), strict=False
    )
    return client


class TrustedProxyMiddleware:
    """X-Forwarded-* believed only from REVENGE_TRUSTED_PROXIES; REMOTE_ADDR becomes the real client.

    Everything downstream (the /metrics allowlist, login throttling, DRF's throttles with NUM_PROXIES=0,
    logs) then reads one address, and `request.is_secure()` (SECURE_PROXY_SSL_HEADER) can only be made
    true by a trusted proxy. The peer's own address is kept in META["REVENGE_PEER_ADDR"].
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = meta.get("REMOTE_ADDR", "")
        meta[PEER_ADDR_META] = peer
        if _trusted(_address(peer)):
            client = forwarded_client(request)
            if client:
                meta["REMOTE_ADDR"] = client
        else:
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response that has none of its own.

    The same policy is set by deploy/nginx (which hides this one to send it once); setting it here too
    means the pages are held to it when Django serves them alone, and the browser tests prove they
    satisfy it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


# The player needs none of these; denying them limits what injected content could do.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
