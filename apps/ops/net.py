from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of the peer that sent this request.

    X-Forwarded-For is ignored here on purpose: any client can send it. Deployments behind a proxy get
    the real client address from the proxy-aware setup (REVENGE_TRUSTED_PROXIES, Deployment issue).
    """
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare them as the IPv4 they are.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
