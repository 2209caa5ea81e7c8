"""A whole deployment on loopback for end-to-end tests: PostgreSQL database, redis-server, gunicorn with
deploy/gunicorn.conf.py, a Celery worker and beat, and nginx with the shipped site in front (TLS).

Everything the tests do goes through nginx over HTTPS, as a client on the internet would; set-up uses
manage.py as an operator would. The database is one of its own, dropped at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import BASE_DIR, child_database_url, free_port, wait_for
from tests.e2e.nginx import NginxSite, stop
from tests.playback.conftest import RedisServer

ADMIN_USER = "operator"
ADMIN_PASSWORD = "e2e correct horse battery staple"
HLS_SECRET = "e2e-hls-secret-" + uuid.uuid4().hex
# 127.0.0.1: nginx (and the tests' own client). 127.0.0.3 plays a load balancer in front of nginx.
TRUSTED_PROXIES = "127.0.0.1/32,127.0.0.3/32"
_TLS = ssl.create_default_context()
_TLS.check_hostname = False
_TLS.verify_mode = ssl.CERT_NONE


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header_count(self, name: str) -> int:
        return len(self.headers.get_all(name) or [])


@dataclass
class Client:
    """One client on loopback: `source` picks its address (127.0.0.0/8 is all ours), `tls` nginx vs a
    plain connection straight to gunicorn."""

    port: int
    source: str = "127.0.0.1"
    tls: bool = True
    token: str | None = None

    def request(self, method: str, path: str, *, headers: dict | None = None, body: Any = None) -> Reply:
        send_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        if self.token:
            send_headers.setdefault("Authorization", f"Bearer {self.token}")
        kwargs = {"timeout": 60, "source_address": (self.source, 0)}
        conn = (
            http.client.HTTPSConnection("127.0.0.1", self.port, context=_TLS, **kwargs)
            if self.tls
            else http.client.HTTPConnection("127.0.0.1", self.port, **kwargs)
        )
        try:
            # skip_accept_encoding: no implicit "identity", so tests choose what they accept.
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in send_headers.items():
                conn.putheader(name, value)
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)


def _admin_database(sql: str) -> None:
    # The maintenance database every PostgreSQL has (the configured one may not exist: pytest uses test_<name>).
    with psycopg.connect(child_database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Stack:
    folder: Path
    media: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    database: str = field(default_factory=lambda: f"revenge_e2e_{uuid.uuid4().hex[:10]}")
    gunicorn_port: int = field(default_factory=free_port)
    site: NginxSite | None = None
    redis: RedisServer | None = None

    @property
    def gunicorn_log(self) -> Path:
        return self.folder / "gunicorn.log"

    @property
    def renditions(self) -> Path:
        return self.folder / "renditions"

    @property
    def artwork(self) -> Path:
        return self.folder / "artwork"

    def client(self, *, source: str = "127.0.0.1", token: str | None = None) -> Client:
        return Client(self.site.https_port, source=source, token=token)

    def direct_client(self, *, source: str = "127.0.0.1") -> Client:
        """Straight to gunicorn, as if nginx were not there."""
        return Client(self.gunicorn_port, source=source, tls=False)

    def manage(self, *args: str, extra_env: dict | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, *, extra_env: dict[str, str] | None = None) -> None:
        _admin_database(f'CREATE DATABASE "{self.database}"')
        self.redis = RedisServer(self.folder)
        self.redis.start()
        for sub in ("data", "static", "prometheus"):
            (self.folder / sub).mkdir(exist_ok=True)
        self.renditions.mkdir(exist_ok=True)
        https_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PROMETHEUS_"))}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            DATABASE_URL=child_database_url(self.database),
            REDIS_URL=self.redis.url,
            REVENGE_DATA_DIR=str(self.folder / "data"),
            RENDITIONS_ROOT=str(self.renditions),
            ARTWORK_ROOT=str(self.artwork),
            STATIC_ROOT=str(self.folder / "static"),
            MEDIA_ROOT=str(self.folder / "data" / "media"),
            PROMETHEUS_MULTIPROC_DIR=str(self.folder / "prometheus"),
            SECRET_KEY="e2e-" + uuid.uuid4().hex + uuid.uuid4().hex,
            HLS_SIGNING_SECRET=HLS_SECRET,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https_port}",
            REVENGE_TRUSTED_PROXIES=TRUSTED_PROXIES,
            REVENGE_HTTPS="1",
            USE_X_ACCEL_REDIRECT="1",
            TRANSCODE_AFTER_SCAN="1",
            # The full ladder, as tests/conftest.py gives every test: its tones are 64 kbit/s, which a fitted
            # ladder would give one rung.
            STREAMING_LADDER="full",
            # nginx's sign-in limit is what the tests measure; the app's own is set out of the way.
            TOKEN_LOGIN_RATE="1000/min",
            PORT=str(self.gunicorn_port),
            WEB_CONCURRENCY="2",
            PROGRESS_FLUSH_INTERVAL="1",
            DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
            DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
            DJANGO_SUPERUSER_EMAIL="operator@example.org",
            **(extra_env or {}),
        )
        self.env = env
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("createsuperuser", "--noinput")
        with (self.folder / "gunicorn.log").open("w") as log:
            self.processes["gunicorn"] = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        with (self.folder / "worker.log").open("w") as log:
            self.processes["worker"] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-l", "WARNING", "--concurrency=2",
                 "-Q", "default,scan,transcode.interactive,transcode.bulk,artwork"],
                cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        with (self.folder / "beat.log").open("w") as log:
            self.processes["beat"] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "revenge", "beat", "-l", "WARNING",
                 "-s", str(self.folder / "data" / "beat-schedule")],
                cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.site = NginxSite(
            folder=self.folder / "nginx",
            http_port=free_port(),
            https_port=https_port,
            upstream=f"127.0.0.1:{self.gunicorn_port}",
            renditions_root=self.renditions,
            artwork_root=self.artwork,
            static_root=self.folder / "static",
            hls_secret=HLS_SECRET,
        )
        self.site.render()
        self.processes["nginx"] = self.site.start()
        wait_for(self._serving, timeout_s=60, what="gunicorn behind nginx", process=self.processes["gunicorn"])

    def _serving(self) -> bool:
        try:
            return self.client().get("/healthz").status == 200
        except OSError:
            return False

    def stop(self) -> None:
        for name in ("nginx", "beat", "worker", "gunicorn"):
            stop(self.processes.get(name))
        if self.redis is not None and self.redis.process is not None:
            self.redis.kill()
        try:
            _admin_database(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except psycopg.Error:
            pass  # left for the server's next clean-up rather than failing the run here

    def login(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, *, source: str = "127.0.0.1") -> str:
        reply = self.client(source=source).request(
            "POST", "/api/v1/auth/token", body={"username": username, "password": password, "name": "e2e"}
        )
        assert reply.status == 201, reply.body
        return reply.json()["token"]

    def create_library(self, name: str, root: Path, kind: str = "music") -> int:
        code = (
            "from apps.library.models import Library; "
            f"print(Library.objects.create(name={name!r}, kind={kind!r}, root_paths=[{str(root)!r}]).pk)"
        )
        return int(self.manage("shell", "--no-imports", "-c", code).strip())

    def scan_and_wait(self, token: str, library_id: int, *, timeout_s: float = 180) -> list[dict]:
        """Scan through the API (the scan queue's worker does it); wait until every track has HLS ready."""
        api = self.client(token=token)
        reply = api.request("POST", f"/api/v1/libraries/{library_id}/scan")
        assert reply.status == 202, reply.body
        job = reply.json()["id"]
        wait_for(
            lambda: api.get(f"/api/v1/scans/{job}").json()["status"] in ("succeeded", "failed"),
            timeout_s=timeout_s, what="scan", process=self.processes["worker"],
        )  # fmt: skip
        assert api.get(f"/api/v1/scans/{job}").json()["status"] == "succeeded"
        tracks = api.get(f"/api/v1/tracks?library={library_id}").json()["results"]

        def all_ready() -> bool:
            return all(api.get(f"/api/v1/tracks/{t['id']}/stream?codecs=aac").json()["ready"] for t in tracks)

        wait_for(all_ready, timeout_s=timeout_s, what="renditions", process=self.processes["worker"])
        return tracks
