"""X-Forwarded-* believed only from REVENGE_TRUSTED_PROXIES; security settings for HTTPS deployments."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from apps.accounts.models import ApiToken
from tests.conftest import BASE_DIR

PASSWORD = "correct horse battery staple"


@pytest.fixture
def behind_proxy(settings):
    settings.REVENGE_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::/64")]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def token_ip(api_client, user, **extra) -> str | None:
    response = api_client.post(
        "/api/v1/auth/token", {"username": user.username, "password": PASSWORD}, format="json", **extra
    )
    assert response.status_code == 201, response.content
    assert (
        ApiToken.objects.get(pk=response.json()["token_info"]["id"]).created_from_ip
        == response.json()["token_info"]["created_from_ip"]
    )
    return response.json()["token_info"]["created_from_ip"]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # No proxy configured in front of this peer: its X-Forwarded-For is the client's own claim.
        ("192.0.2.10", "198.51.100.7", "192.0.2.10"),
        ("192.0.2.10", None, "192.0.2.10"),
        # A trusted proxy: the hop it names is the client.
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # A client forging the header in front of our proxy: only the hop our proxy added counts.
        ("10.0.0.5", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        # Two of our proxies (a load balancer then nginx): skip every trusted hop from the right.
        ("10.0.0.5", "1.2.3.4, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        # Ports and brackets as some proxies write them.
        ("10.0.0.5", "[2001:db8::7]:4711", "2001:db8::7"),
        ("10.0.0.5", "198.51.100.7:4711", "198.51.100.7"),
        # IPv6 proxy, IPv4-mapped peer of a dual-stack socket.
        ("fd00::2", "198.51.100.7", "198.51.100.7"),
        ("::ffff:10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # Garbage from a trusted proxy: fall back to the peer rather than guess.
        ("10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_client_address_comes_from_forwarded_for_only_through_a_trusted_proxy(
    behind_proxy, api_client, user, peer, forwarded_for, expected
):
    extra = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    assert ipaddress.ip_address(token_ip(api_client, user, **extra)) == ipaddress.ip_address(expected)


def test_without_trusted_proxies_forwarded_for_is_ignored(settings, api_client, user):
    assert settings.REVENGE_TRUSTED_PROXIES == []
    assert token_ip(api_client, user, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7") == "10.0.0.5"


def test_https_comes_from_forwarded_proto_only_through_a_trusted_proxy(behind_proxy, client):
    behind_proxy.SECURE_SSL_REDIRECT = True
    forged = client.get("/api/v1/schema", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_PROTO="https")
    proxied = client.get("/healthz", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_PROTO="https")
    proxied_plain = client.get("/api/v1/schema", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_PROTO="http")
    probe = client.get("/healthz", REMOTE_ADDR="10.0.0.5")

    # An untrusted peer claiming HTTPS is still on plain HTTP: redirected.
    assert forged.status_code == 301
    assert forged["Location"] == "https://testserver/api/v1/schema"
    assert proxied.status_code == 200
    assert proxied_plain.status_code == 301
    assert probe.status_code == 200  # health checks are exempt from the redirect


def test_metrics_allowlist_applies_to_the_real_client(behind_proxy, client, db):
    behind_proxy.METRICS_ALLOWED_CIDRS = [ipaddress.ip_network("10.0.0.0/8")]
    from_proxy_for_outsider = client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7")
    from_proxy_for_insider = client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="10.1.2.3")

    assert from_proxy_for_outsider.status_code == 403
    assert from_proxy_for_insider.status_code == 200


def test_every_response_carries_the_security_headers(client, settings):
    response = client.get("/healthz")
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Permissions-Policy"].startswith("camera=()")


PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Rk2vQp9LmN4sT8wY1zB6cF3hJ5gD0aE-_uV2iO9pK7lM3nQ8rS1tU6wX4yZ0bC",
    "ALLOWED_HOSTS": "music.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://music.example.org",
    "REVENGE_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
    "REVENGE_HTTPS": "1",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "USE_X_ACCEL_REDIRECT": "1",
    "LOG_FORMAT": "json",
}


def run_check_deploy(process_env: dict[str, str], extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**process_env, **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings(process_env):
    result = run_check_deploy(process_env, PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_on_plain_http_settings(process_env):
    result = run_check_deploy(process_env, {**PRODUCTION_ENV, "REVENGE_HTTPS": "0"})
    assert result.returncode == 1
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr
