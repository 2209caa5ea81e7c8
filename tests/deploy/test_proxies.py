"""deploy/caddy and deploy/traefik: validated and run (Caddy), structure (Traefik)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.deploy.kit import DEPLOY, Recorder, compose, load_yaml, require
from tests.e2e.nginx import NginxSite

# --- nginx (the site itself runs in tests/e2e/test_proxy.py) -----------------------------------------


def test_the_site_loads_into_debians_own_nginx_conf(tmp_path):
    """README step 7 drops the site into Debian's stock nginx.conf, which sets things of its own at http
    level (gzip on, ssl_protocols...): no directive of the site may clash with them."""
    stock = Path("/etc/nginx/nginx.conf")
    if not stock.exists() or "sites-enabled" not in stock.read_text():
        pytest.skip("no Debian nginx.conf here (.ci/run installs Debian's nginx)")
    nginx = require("nginx")
    site = NginxSite(
        folder=tmp_path, http_port=free_port(), https_port=free_port(), upstream="127.0.0.1:8000",
        renditions_root=tmp_path, static_root=tmp_path, hls_secret="secret",
    )  # fmt: skip
    site.render()
    replacements = {
        "include /etc/nginx/sites-enabled/*;": f"include {site.folder / 'site.conf'};",
        # Where this test may write (the rest is Debian's file as shipped).
        "pid /run/nginx.pid;": f"pid {tmp_path / 'nginx.pid'};",
        "/var/log/nginx/": f"{tmp_path / 'logs'}/",
    }
    text = stock.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "stock.conf").write_text(text)

    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "stock.conf")], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


# --- Caddy ------------------------------------------------------------------------------------------


def test_caddyfile_validates():
    caddy = require("caddy")

    done = subprocess.run(
        [caddy, "validate", "--config", str(DEPLOY / "caddy/Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
    )

    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr


def test_caddy_serves_static_files_proxies_the_rest_and_keeps_audio_uncompressed(tmp_path, upstream):
    caddy = require("caddy")
    static = tmp_path / "state/static/admin"
    static.mkdir(parents=True)
    (static / "base.css").write_text("body { color: black; }\n")
    # The shipped file, with the admin API off (no fixed port shared with other runs) and plain HTTP.
    config = (DEPLOY / "caddy/Caddyfile").read_text().replace("\n{\n", "\n{\n\tadmin off\n", 1)
    (tmp_path / "Caddyfile").write_text(config)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "REVENGE_DOMAIN": f"http://127.0.0.1:{port}",
        "REVENGE_UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
        "REVENGE_STATE_DIR": str(tmp_path / "state"),
    }
    server = subprocess.Popen(
        [caddy, "run", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def answers() -> bool:
        try:
            get("/static/admin/base.css")
        except OSError:
            return False
        return True

    try:
        wait_for(answers, timeout_s=15, what="caddy", process=server)
        static_answer = get("/static/admin/base.css")
        metrics = get("/metrics")
        segment = get("/hls/1700000000/sig/1/key/aac-128/seg-1.m4s")
        json_answer = get("/api/blob", **{"Accept-Encoding": "gzip"})
        audio = get("/audio/1", **{"Accept-Encoding": "gzip", "Range": "bytes=100-199"})
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert static_answer[0] == 200 and static_answer[2] == b"body { color: black; }\n"
    assert static_answer[1]["Cache-Control"] == "public, max-age=31536000, immutable"
    assert static_answer[1]["X-Content-Type-Options"] == "nosniff"
    assert metrics[0] == 403
    assert not any(seen["path"] == "/metrics" for seen in Recorder.seen)
    hls_request = next(seen for seen in Recorder.seen if seen["path"].startswith("/hls/"))
    assert segment[0] == 200 and hls_request["X-Forwarded-For"] == "127.0.0.1"
    assert json_answer[1]["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(json_answer[2]))
    assert audio[0] == 206 and "Content-Encoding" not in audio[1]
    assert audio[1]["Content-Range"] == "bytes 100-199/10240" and audio[2] == bytes(range(100, 200))


# --- Traefik ----------------------------------------------------------------------------------------


def test_traefik_examples_route_to_gunicorn_and_let_django_send_the_bytes():
    override = load_yaml(DEPLOY / "docker-compose.traefik.yml")["services"]
    labels = dict(label.split("=", 1) for label in override["web"]["labels"])
    dynamic = load_yaml(DEPLOY / "traefik/revenge.yml")["http"]
    static = load_yaml(DEPLOY / "traefik/traefik.yml")

    assert override["web"]["environment"] == {"USE_X_ACCEL_REDIRECT": "0"}
    assert override["nginx"] == {"profiles": ["nginx"]}
    assert labels["traefik.http.services.revenge.loadbalancer.server.port"] == "8000"
    assert labels["traefik.http.routers.revenge.rule"] == "Host(`${REVENGE_DOMAIN}`)"
    assert labels["traefik.http.routers.revenge-metrics.middlewares"] == "revenge-deny"
    assert "--providers.docker.network=revenge_revenge" in override["traefik"]["command"]
    assert compose()["name"] == "revenge" and "revenge" in compose()["networks"]
    assert dynamic["services"]["revenge"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:8000"}]
    assert dynamic["routers"]["revenge-metrics"]["middlewares"] == ["revenge-deny"]
    assert static["providers"]["file"]["filename"] == "/etc/traefik/revenge.yml"
