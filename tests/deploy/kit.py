"""Shared by the tests of the deployment kit (deploy/): compose, Docker image, systemd, Caddy, Traefik,
Prometheus, Grafana.

Each file is checked with the real tool where one runs here (the Compose Specification's JSON schema,
caddy, promtool, systemd-analyze, nginx, the kernel's PR_SET_MDWE) and against the app itself (its
/metrics output, its management commands, the README's list of variables).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_DIR

DEPLOY = BASE_DIR / "deploy"
HERE = Path(__file__).resolve().parent
COMPOSE = DEPLOY / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker-default", "worker-transcode", "worker-interactive", "beat")
LONG_RUNNING = ("postgres", "redis", "web", "worker-default", "worker-transcode", "worker-interactive", "beat", "nginx")
APP_PATHS = {"media": "/media", "renditions": "/var/lib/revenge/renditions", "static": "/var/lib/revenge/static"}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compose() -> dict:
    return load_yaml(COMPOSE)


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """target path -> (source, read-only) of a service's short-syntax volumes."""
    found = {}
    for entry in service.get("volumes", []):
        source, target, *options = entry.split(":")
        found[target] = (source, "ro" in options)
    return found


def directives(path: Path) -> list[str]:
    """An nginx file's lines without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def require(tool: str, source: str = ".ci/run installs it") -> str:
    path = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if path is None:
        # CI (.ci/run) installs the system tools and sets this: there, a missing tool is a failure.
        if os.environ.get("REVENGE_REQUIRE_SYSTEM_TOOLS") and source == ".ci/run installs it":
            pytest.fail(f"{tool} is not installed, and .ci/run should have installed it")
        pytest.skip(f"{tool} is not installed ({source})")
    return path


class Recorder(BaseHTTPRequestHandler):
    """A stand-in upstream: records the Host header, answers what the test asks for."""

    seen: list[dict[str, str]] = []

    def do_GET(self):  # noqa: N802 - the base class's name
        type(self).seen.append({"path": self.path, **dict(self.headers.items())})
        if self.path.startswith("/api/blob"):
            body = json.dumps({"tracks": ["x" * 40] * 50}).encode()
            self._answer(200, body, "application/json")
        elif self.path.startswith("/audio"):
            data = bytes(range(256)) * 40
            first, last = 100, 199  # answers `Range: bytes=100-199` as Django would
            self._answer(
                206, data[first : last + 1], "audio/mp4", {"Content-Range": f"bytes {first}-{last}/{len(data)}"}
            )
        else:
            self._answer(200, b"ok", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def upstream():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
