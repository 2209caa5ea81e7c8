from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def login(client, username, password=PASSWORD, **extra):
    return client.post("/api/v1/auth/token", {"username": username, "password": password, **extra}, format="json")


def test_login_returns_a_working_token_that_only_its_digest_is_stored(api_client, user):
    response = login(api_client, user.username, name="phone")

    assert response.status_code == 201
    key = response.json()["token"]
    assert key.startswith("rvg_") and len(key) > 40
    assert response.json()["user"] == {
        "id": user.id,
        "username": user.username,
        "is_staff": False,
        "date_joined": response.json()["user"]["date_joined"],
    }
    stored = ApiToken.objects.get()
    assert stored.name == "phone"
    assert stored.key_digest == ApiToken.digest(key) and key not in stored.key_digest

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    me = api_client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == user.username
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_token_keyword_is_accepted_too(api_client, user):
    key = login(api_client, user.username).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/v1/me").status_code == 200


def test_logout_revokes_only_the_token_used(api_client, user):
    phone = login(api_client, user.username, name="phone").json()["token"]
    laptop = login(api_client, user.username, name="laptop").json()["token"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {phone}")
    assert api_client.delete("/api/v1/auth/token").status_code == 204

    revoked = api_client.get("/api/v1/me")
    assert revoked.status_code == 401
    assert revoked.json() == {"error": {"code": "authentication_failed", "message": "Invalid or revoked token."}}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {laptop}")
    assert api_client.get("/api/v1/me").status_code == 200
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["laptop"]


def test_list_and_revoke_own_tokens_by_id_but_not_another_users(api_client, user):
    other = UserFactory()
    other_key = login(api_client, other.username).json()["token"]
    key = login(api_client, user.username, name="phone").json()["token"]
    other_token = ApiToken.objects.get(user=other)

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    listed = api_client.get("/api/v1/auth/tokens").json()
    assert [(t["name"], t["key_hint"]) for t in listed] == [("phone", key[:8])]

    denied = api_client.delete(f"/api/v1/auth/tokens/{other_token.id}")
    assert denied.status_code == 404
    assert denied.json()["error"]["code"] == "not_found"
    assert ApiToken.objects.filter(pk=other_token.pk).exists()

    own_id = listed[0]["id"]
    assert api_client.delete(f"/api/v1/auth/tokens/{own_id}").status_code == 204
    assert api_client.get("/api/v1/me").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert api_client.get("/api/v1/me").status_code == 200


def test_wrong_password_is_401_in_the_error_format_and_issues_nothing(api_client, user):
    response = login(api_client, user.username, password="wrong")

    assert response.status_code == 401
    assert response.json() == {"error": {"code": "invalid_credentials", "message": "Wrong user name or password."}}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert ApiToken.objects.count() == 0


def test_inactive_user_cannot_log_in_and_loses_token_access(api_client, user):
    key = login(api_client, user.username).json()["token"]
    user.is_active = False
    user.save()

    assert login(api_client, user.username).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/v1/me").status_code == 401


def test_missing_fields_are_400_with_field_messages(api_client):
    response = api_client.post("/api/v1/auth/token", {"username": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Invalid input.",
            "fields": {"username": ["This field may not be blank."], "password": ["This field is required."]},
        }
    }


def test_malformed_json_is_400_in_the_error_format(api_client):
    response = api_client.generic("POST", "/api/v1/auth/token", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_anonymous_and_garbage_tokens_are_401(api_client):
    anonymous = api_client.get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    api_client.credentials(HTTP_AUTHORIZATION="Bearer rvg_not-a-real-token")
    assert api_client.get("/api/v1/me").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION="Bearer too many parts")
    assert api_client.get("/api/v1/me").json()["error"]["message"].startswith("Malformed Authorization header")


def test_delete_without_a_token_is_refused(user):
    client = APIClient()
    client.force_login(user)
    response = client.delete("/api/v1/auth/token")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_token_login_is_throttled_per_client_address_at_the_default_rate(api_client, user):
    # The shipped default, TOKEN_LOGIN_RATE=10/min.
    codes = [login(api_client, user.username, password="wrong").status_code for _ in range(10)]
    # A forged X-Forwarded-For must not buy a fresh allowance.
    throttled = api_client.post(
        "/api/v1/auth/token",
        {"username": user.username, "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    other_address = api_client.post(
        "/api/v1/auth/token", {"username": user.username, "password": PASSWORD}, format="json", REMOTE_ADDR="192.0.2.10"
    )

    assert codes == [401] * 10
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert throttled.json()["error"]["message"].startswith("Request was throttled.")
    assert int(throttled.headers["Retry-After"]) > 0
    assert other_address.status_code == 201
    assert ApiToken.objects.filter(user=user).count() == 1  # only the other address got one


def test_the_admin_sign_in_counts_against_the_same_budget(api_client, user):
    user.is_staff = True
    user.save()
    admin_browser = Client()
    admin_codes = [
        admin_browser.post("/admin/login/", {"username": user.username, "password": "wrong"}).status_code
        for _ in range(6)
    ]
    api_codes = [login(api_client, user.username, password="wrong").status_code for _ in range(4)]

    refused = admin_browser.post("/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD})
    api_refused = login(api_client, user.username)

    assert admin_codes == [200] * 6 and api_codes == [401] * 4  # 10 attempts: the default 10/min
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in admin_browser.session  # the right password did not get in
    assert api_refused.status_code == 429
    assert (
        Client(REMOTE_ADDR="192.0.2.10")
        .post("/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD})
        .status_code
        == 302
    )  # another address has its own budget


def test_ipv6_clients_share_one_budget_per_64(api_client, user):
    def login_from(address: str, password: str):
        body = {"username": user.username, "password": password}
        return api_client.post("/api/v1/auth/token", body, format="json", REMOTE_ADDR=address)

    codes = [login_from(f"2001:db8:1:2::{n:x}", "wrong").status_code for n in range(1, 12)]
    other_network = login_from("2001:db8:1:3::1", PASSWORD)

    assert codes == [401] * 10 + [429]  # rotating addresses inside one /64 buys nothing
    assert other_network.status_code == 201


def test_browser_session_writes_need_the_csrf_token(user):
    other_device = ApiToken.objects.create(user=user, name="old phone", key_digest="0" * 64, key_hint="rvg_0000")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.get("/api/v1/me").status_code == 200  # reads need no token
    refused = browser.delete(f"/api/v1/auth/tokens/{other_device.id}")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in refused.json()["error"]["message"]
    assert ApiToken.objects.filter(pk=other_device.pk).exists()

    browser.get("/admin/login/")  # any page that renders a form sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.delete(f"/api/v1/auth/tokens/{other_device.id}", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert not ApiToken.objects.filter(pk=other_device.pk).exists()


def test_a_token_revoked_elsewhere_is_refused_within_the_cache_delay(api_client, user, monkeypatch):
    """Another worker (here: a DELETE that sends no signal to this process) revokes the token: this process
    trusts its cached lookup for TOKEN_CACHE_S at most, then asks PostgreSQL again."""
    from django.db import connection

    from apps.accounts import authentication

    clock = [1000.0]
    monkeypatch.setattr(authentication, "_clock", lambda: clock[0])
    authentication.token_cache_clear()
    key = login(api_client, user.username).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/v1/me").status_code == 200  # looked up, then cached
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_apitoken")
    with CaptureQueriesContext(connection) as queries:
        assert api_client.get("/api/v1/me").status_code == 200  # within the delay: the cache answers
    assert not [q["sql"] for q in queries.captured_queries if "accounts_apitoken" in q["sql"]]
    clock[0] += authentication.TOKEN_CACHE_S
    revoked = api_client.get("/api/v1/me")
    assert revoked.status_code == 401
    assert revoked.json() == {"error": {"code": "authentication_failed", "message": "Invalid or revoked token."}}


def test_a_cached_request_gets_its_own_user_copy(api_client, user):
    from apps.accounts import authentication

    authentication.token_cache_clear()
    key = login(api_client, user.username).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/v1/me").status_code == 200
    request = RequestFactory().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}")
    first_user, first_token = authentication.ApiTokenAuthentication().authenticate(request)
    second_user, second_token = authentication.ApiTokenAuthentication().authenticate(request)
    assert first_user.pk == second_user.pk == user.pk and first_token.pk == second_token.pk
    assert first_user is not second_user and first_token is not second_token
    assert first_token.user is first_user
