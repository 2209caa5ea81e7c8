"""Redis down costs nobody their sign-in (issue 13, finding 3): sessions and the sign-in budget live in
PostgreSQL, so the token endpoint, /login/, /admin/login/ and signed-in pages answer while the cache does
not, and the budget still limits. The fault test with real processes is tests/e2e/test_make_run.py."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from apps.accounts.models import SignInAttempt
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


@pytest.fixture
def redis_down(settings):
    """Point the cache at a Redis that refuses connections, and back before the test's keys are deleted."""
    before = settings.CACHES
    settings.CACHES = {**before, "default": {**before["default"], "LOCATION": DEAD_REDIS}}
    with pytest.raises(RedisConnectionError):
        cache.get("anything")
    yield
    settings.CACHES = before


@pytest.fixture
def staff():
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


def token_sign_in(client: APIClient, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


def test_token_sign_in_works_while_redis_is_down(redis_down, user):
    response = token_sign_in(APIClient(), user.username)

    assert response.status_code == 201
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert api.get("/api/v1/me").json()["username"] == user.username


def test_web_sign_in_and_signed_in_pages_work_while_redis_is_down(redis_down, user):
    browser = Client()

    signed_in = browser.post("/login/", {"username": user.username, "password": PASSWORD})
    home = browser.get("/")

    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert home.status_code == 200 and user.username in home.content.decode()
    assert browser.get("/api/v1/me").json()["username"] == user.username  # session auth on the API
    signed_out = browser.post("/logout/")
    assert signed_out.status_code == 302 and browser.get("/").status_code == 302


def test_admin_sign_in_and_pages_work_while_redis_is_down(redis_down, staff):
    browser = Client()

    signed_in = browser.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD})
    index = browser.get("/admin/")

    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert index.status_code == 200 and "Site administration" in index.content.decode()


def test_a_session_started_before_redis_went_down_keeps_working(settings, user):
    browser = Client()
    assert browser.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    before = settings.CACHES
    settings.CACHES = {**before, "default": {**before["default"], "LOCATION": DEAD_REDIS}}
    try:
        page = browser.get("/")
    finally:
        settings.CACHES = before

    assert page.status_code == 200 and user.username in page.content.decode()


def test_the_sign_in_budget_still_limits_while_redis_is_down(redis_down, user):
    api = APIClient()
    browser = Client()

    api_codes = [token_sign_in(api, user.username, "wrong").status_code for _ in range(5)]
    web_codes = [
        browser.post("/login/", {"username": user.username, "password": "wrong"}).status_code for _ in range(5)
    ]
    refused_api = token_sign_in(api, user.username)
    refused_web = browser.post("/login/", {"username": user.username, "password": PASSWORD})
    refused_admin = browser.post("/admin/login/", {"username": user.username, "password": PASSWORD})

    assert api_codes == [401] * 5 and web_codes == [200] * 5  # the shipped 10/min, shared by every way in
    assert refused_api.status_code == 429 and refused_api.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused_api["Retry-After"]) <= 60
    assert refused_web.status_code == 429 and 1 <= int(refused_web["Retry-After"]) <= 60
    assert refused_admin.status_code == 429
    assert "_auth_user_id" not in browser.session
    assert SignInAttempt.objects.filter(client="127.0.0.1").count() == 10  # refused attempts are not counted
    assert token_sign_in(APIClient(REMOTE_ADDR="192.0.2.10"), user.username).status_code == 201
