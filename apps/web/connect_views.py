""" "Connect an app": the user's app passwords for Subsonic apps (/rest/), created (shown once, with a QR code
of what to type) and revoked here, through apps.accounts' services."""

from __future__ import annotations

from typing import cast

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import AppPassword
from apps.accounts.selectors import app_password_list
from apps.accounts.services import app_password_create, app_password_revoke
from apps.accounts.types import User

NAME_MAX_LENGTH = AppPassword._meta.get_field("name").max_length or 100


@login_required
@require_http_methods(["GET", "POST"])
def connect(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST: a new app password, shown on the answer itself (never stored in the session or
    a message, and gone on reload)."""
    user = cast(User, request.user)
    server_url = request.build_absolute_uri("/")
    context: dict[str, object] = {"server_url": server_url, "name_max_length": NAME_MAX_LENGTH}
    status = 200
    if request.method == "POST":
        name = " ".join(request.POST.get("name", "").split())[:NAME_MAX_LENGTH]
        if not name:
            context["error"] = "Give it a name, e.g. the app and the device it is for."
            status = 400
        else:
            row, password = app_password_create(user=user, name=name)
            text = f"Server: {server_url}\nUser: {user.get_username()}\nPassword: {password}"
            context["created"] = {"name": row.name, "password": password, "qr": segno.make(text).svg_inline(scale=4)}
    context["app_passwords"] = list(app_password_list(user=user))
    response = render(request, "web/connect.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a password
    return response


@login_required
@require_POST
def connect_revoke(request: HttpRequest, app_password_id: int) -> HttpResponse:
    row = get_object_or_404(app_password_list(user=request.user), pk=app_password_id)
    app_password_revoke(app_password=row)
    return redirect("web:connect")
