"""`make run` as a new user meets it: embedded services, admin account, web + worker + beat, clean stop.

Runs `python -m revenge.launcher run` (what `make run` does once the virtualenv exists) with no
DATABASE_URL / REDIS_URL, in a fresh data folder, then again on the same folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from celery import Celery

from tests.conftest import BASE_DIR, free_port, wait_for
from tests.e2e.conftest import Browser

pytestmark = pytest.mark.slow


def start(data_dir: Path, port: int, log: Path, process_env: dict[str, str]) -> subprocess.Popen:
    env = {
        key: value
        for key, value in process_env.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY"}
    }
    env.update(
        REVENGE_DATA_DIR=str(data_dir),
        PORT=str(port),
        WEB_CONCURRENCY="1",
        CELERY_WORKER_CONCURRENCY="1",
        REVENGE_ADMIN_PASSWORD="",
    )
    # Own session, like a terminal's foreground job: the test sends SIGINT to the group, as Ctrl-C does.
    return subprocess.Popen(
        [sys.executable, "-m", "revenge.launcher", "run"],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def ours(launcher: subprocess.Popen, data_dir: Path) -> list[psutil.Process]:
    """Every process this run started: the launcher's descendants, and the daemonized PostgreSQL."""
    found = {launcher.pid: psutil.Process(launcher.pid)}
    for child in psutil.Process(launcher.pid).children(recursive=True):
        found[child.pid] = child
    for process in psutil.process_iter(["cmdline"]):
        if str(data_dir) in " ".join(process.info["cmdline"] or []):
            found[process.pid] = process
    return list(found.values())


def ctrl_c(launcher: subprocess.Popen) -> int:
    os.killpg(launcher.pid, signal.SIGINT)
    return launcher.wait(timeout=60)


def serving(browser: Browser) -> bool:
    try:
        return browser.request("/healthz")[0] == 200
    except OSError:
        return False


def test_make_run_serves_with_embedded_services_and_stops_everything(process_env, tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    browser = Browser(f"http://127.0.0.1:{port}")
    log = tmp_path / "run.log"

    launcher = start(data_dir, port, log, process_env)
    try:
        wait_for(lambda: serving(browser), timeout_s=90, what="make run serving", process=launcher)
        status, _, ready = browser.request("/readyz")
        assert status == 200, ready

        output = log.read_text()
        password = re.search(r"password: (\S+)", output).group(1)
        assert re.search(rf"URL:\s+http://127\.0\.0\.1:{port}/admin/", output)
        status, url, page = browser.admin_login("admin", password)
        assert status == 200 and url.endswith("/admin/") and "Site administration" in page

        status, _, docs = browser.request("/api/v1/docs")
        assert status == 200 and "swagger-ui" in docs
        status, _, css = browser.request("/static/admin/css/base.css")
        assert status == 200 and "body" in css

        # The worker takes a task from the embedded Redis.
        broker = f"redis+socket://{data_dir / 'redis' / 'redis.sock'}"
        app = Celery("probe", broker=broker, backend=broker)
        assert (
            app.send_task("apps.ops.tasks.ops_ping_task", args=["hello"], queue="default").get(timeout=60)["echo"]
            == "hello"
        )

        started = ours(launcher, data_dir)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "gunicorn" in names and "worker" in names and "beat" in names
        assert "postgres" in names and "redis-server" in names
    finally:
        if launcher.poll() is None:
            ctrl_c(launcher)

    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"

    # A second run reuses the data: the admin account exists, nothing new is printed.
    log2 = tmp_path / "run2.log"
    launcher = start(data_dir, port, log2, process_env)
    try:
        wait_for(lambda: serving(browser), timeout_s=90, what="second make run serving", process=launcher)
        second = log2.read_text()
        assert "Admin account exists" in second and "password:" not in second
        assert Browser(browser.base_url).admin_login("admin", password)[1].endswith("/admin/")
        started = ours(launcher, data_dir)
    finally:
        ctrl_c(launcher)
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []
