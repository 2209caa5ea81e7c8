"""The admin's sign-in, counted against the same per-client budget as the API and the web player."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from apps.accounts.throttling import sign_in_wait_s


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """admin.site.login, refusing POSTs over TOKEN_LOGIN_RATE with 429 and Retry-After. Behind nginx the
    site limits /admin/login/ too; this holds under Caddy, Traefik, plain gunicorn and `make run`."""
    if request.method == "POST":
        wait_s = sign_in_wait_s(request)
        if wait_s is not None:
            response = HttpResponse(
                f"Too many sign-in attempts from your address. Try again in {wait_s} s.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait_s)
            return response
    return admin.site.login(request, extra_context)
