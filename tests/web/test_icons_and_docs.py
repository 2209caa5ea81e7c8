"""Issue 14 item 10 without a browser: every page names its icon (the admin's too), /favicon.ico leads to it,
and the API docs page holds no inline style or script for the Content-Security-Policy to block. The
Chromium test of the same pages' consoles is in tests/e2e/test_pages.py."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_favicon_ico_redirects_to_the_pages_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/web/favicon.svg"
    assert finders.find("web/favicon.svg")


@pytest.mark.parametrize(
    "path, staff",
    [("/admin/", True), ("/admin/library/library/add/", True), ("/admin/login/", False), ("/login/", False)],
)
def test_admin_and_web_pages_name_their_icon(client, path, staff):
    if staff:
        client.force_login(get_user_model().objects.create_superuser("boss", password="x"))

    response = client.get(path)

    assert response.status_code == 200
    assert response.content.decode().count('<link rel="icon" href="/static/web/favicon.svg" type="image/svg+xml">') == 1


def test_the_api_docs_page_has_no_inline_style_or_script(client):
    response = client.get("/api/v1/docs")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<style" not in html and " style=" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert '<link rel="stylesheet" href="/static/web/css/api-docs.css">' in html
    assert finders.find("web/css/api-docs.css")
