"""Every JSON body the parser cannot read is a 400 in the usual error format, on every endpoint that reads a
body, signed in or not (a body nested deeper than the recursion limit was a 500)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_issue

pytestmark = pytest.mark.django_db

NESTED_LISTS = "[" * 1000 + "]" * 1000
NESTED_OBJECTS = '{"a":' * 100_000 + "1" + "}" * 100_000
NESTED_ERROR = {"error": {"code": "parse_error", "message": "JSON parse error - nested too deeply."}}


@pytest.mark.parametrize("body", [NESTED_LISTS, NESTED_OBJECTS])
def test_deeply_nested_json_is_400_for_the_unauthenticated_sign_in(api_client, user, body):
    response = api_client.post("/api/v1/auth/token", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == NESTED_ERROR


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/progress/1"),
        ("post", "/api/v1/progress/batch"),
        ("post", "/api/v1/sessions"),
        ("post", "/api/v1/tracks/1/bookmarks"),
        ("put", "/api/v1/queue?device_id=phone"),
    ],
)
def test_deeply_nested_json_is_400_on_every_endpoint_that_reads_a_body(user, method, path):
    _token, key = api_token_issue(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = getattr(client, method)(path, NESTED_LISTS, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == NESTED_ERROR


def test_other_unreadable_json_keeps_its_400(api_client, user):
    response = api_client.post("/api/v1/auth/token", "[1,", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
