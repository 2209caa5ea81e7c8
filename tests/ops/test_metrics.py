from __future__ import annotations

import ipaddress

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_refused_outside_the_allowed_ranges(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.5")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert b"django_http_requests" not in response.content


def test_metrics_from_loopback_count_requests(client):
    for _ in range(3):
        client.get("/healthz")

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert (
        'django_http_requests_total_by_view_transport_method_total{method="GET",transport="http",view="healthz"}'
        in text
    )


def test_metrics_ipv4_mapped_loopback_is_loopback(client):
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


def test_metrics_token_opens_access_from_anywhere_and_a_wrong_one_does_not(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"

    allowed = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer guess")

    assert allowed.status_code == 200
    assert refused.status_code == 403


def test_allowed_ranges_come_from_settings(client, settings):
    settings.METRICS_ALLOWED_CIDRS = [ipaddress.ip_network("10.0.0.0/8")]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
