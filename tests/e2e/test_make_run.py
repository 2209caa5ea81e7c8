"""`make run` as a new user meets it: embedded services, admin account, web + worker + beat, clean stop;
and as an operator meets it when something dies under it (issue 13, findings 3 and 4; issue 14, item 4).

Runs `python -m revenge.launcher run` (what `make run` does once the virtualenv exists) with no
DATABASE_URL / REDIS_URL, in a fresh data folder, then again on the same folder.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
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


def ready(browser: Browser) -> bool:
    try:
        return browser.request("/readyz")[0] == 200
    except OSError:
        return False


def assert_stopped_cleanly(code: int, output: str) -> None:
    """Issue 14 item 4: every process stopped on its own, nothing was killed, the launcher said so, exit 0."""
    assert code == 0, output[-3000:]
    assert "SIGKILL" not in output and "SIGQUIT" not in output
    for name in ("web.1", "worker.1", "interactive.1", "beat.1"):
        assert re.search(rf"launcher \| {re.escape(name)} stopped \(exit 0\)", output), name
    assert "launcher | embedded Redis stopped" in output
    assert "launcher | embedded PostgreSQL stopped" in output


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

        # A browser keeps its connection open after a page: Ctrl-C must not wait on it (issue 14 item 4).
        kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        kept_alive.request("GET", "/healthz")
        assert kept_alive.getresponse().read() and kept_alive.sock is not None  # kept open
    finally:
        code = ctrl_c(launcher) if launcher.poll() is None else launcher.returncode

    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"
    assert_stopped_cleanly(code, log.read_text())

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


def sign_in_with_a_token(base_url: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())["token"]


def me(base_url: str, token: str) -> str:
    request = urllib.request.Request(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["username"]


def sign_in_on_the_web(browser: Browser, username: str, password: str) -> tuple[int, str, str]:
    _, _, page = browser.request("/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return browser.request(
        "/login/",
        data={"csrfmiddlewaretoken": csrf, "username": username, "password": password},
        headers={"Referer": browser.base_url + "/login/"},
    )


def child_of(launcher: subprocess.Popen, *words: str) -> psutil.Process:
    [found] = [p for p in psutil.Process(launcher.pid).children() if all(w in " ".join(p.cmdline()) for w in words)]
    return found


def ping(data_dir: Path) -> str:
    broker = f"redis+socket://{data_dir / 'redis' / 'redis.sock'}"
    app = Celery("probe", broker=broker, backend=broker, set_as_current=False)
    try:
        return app.send_task("apps.ops.tasks.ops_ping_task", args=["again"], queue="default").get(timeout=60)["echo"]
    finally:
        app.close()


def test_make_run_outlives_its_redis_postgresql_and_a_worker_dying(process_env, tmp_path):
    """kill -9 under a running `make run`: sign-in and pages keep working while Redis is down, the launcher
    restarts what died with one line each, /readyz is 200 again without anyone acting, and Ctrl-C still
    stops everything cleanly."""
    data_dir = tmp_path / "data"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    launcher = start(data_dir, port, log, process_env)
    try:
        wait_for(lambda: ready(Browser(base_url)), timeout_s=90, what="make run ready", process=launcher)
        password = re.search(r"password: (\S+)", log.read_text()).group(1)
        signed_in_before = Browser(base_url)
        assert sign_in_on_the_web(signed_in_before, "admin", password)[1] == base_url + "/"

        # Redis dies, and stays down while the launcher is held still (SIGSTOP): what do users see?
        redis_server = child_of(launcher, "redis-server")
        os.kill(launcher.pid, signal.SIGSTOP)
        try:
            redis_server.kill()  # stays a zombie until the launcher, held still, reaps it
            wait_for(lambda: redis_server.status() == psutil.STATUS_ZOMBIE, timeout_s=10, what="Redis killed")
            status, _, body = Browser(base_url).request("/readyz")
            assert status == 503 and json.loads(body)["failed"] == ["redis", "broker"]
            token = sign_in_with_a_token(base_url, "admin", password)
            assert me(base_url, token) == "admin"
            browser = Browser(base_url)
            status, url, home = sign_in_on_the_web(browser, "admin", password)
            assert (status, url) == (200, base_url + "/") and "admin" in home
            status, _, home = signed_in_before.request("/")
            assert status == 200 and "admin" in home
            assert browser.request("/admin/")[0] == 200
        finally:
            os.kill(launcher.pid, signal.SIGCONT)
        wait_for(lambda: ready(Browser(base_url)), timeout_s=30, what="/readyz after Redis died", process=launcher)
        assert ping(data_dir) == "again"

        # The worker dies: the launcher starts a new one, the server stays up.
        worker = child_of(launcher, "celery", "worker@")
        worker.kill()
        wait_for(
            lambda: "worker.1 was killed by signal 9; restarting it in" in log.read_text(),
            timeout_s=10,
            what="the launcher noticing the worker died",
            process=launcher,
        )
        assert signed_in_before.request("/healthz")[0] == 200
        assert ping(data_dir) == "again"  # answered by the new worker
        assert child_of(launcher, "celery", "worker@").pid != worker.pid

        # PostgreSQL dies: restarted too; the signed-in session (kept in PostgreSQL) is still there.
        postmaster_pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster_pid, signal.SIGKILL)
        wait_for(lambda: ready(Browser(base_url)), timeout_s=60, what="/readyz after PostgreSQL died", process=launcher)
        status, _, home = signed_in_before.request("/")
        assert status == 200 and "admin" in home
        started = ours(launcher, data_dir)
    finally:
        if launcher.poll() is None:
            os.kill(launcher.pid, signal.SIGCONT)
        code = ctrl_c(launcher) if launcher.poll() is None else launcher.returncode

    gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"
    output = log.read_text()
    assert output.count("launcher | embedded Redis was killed by signal 9; restarted in") == 1
    assert output.count("launcher | embedded PostgreSQL had stopped; restarted in") == 1
    assert output.count("launcher | worker.1 was killed by signal 9") == 1
    # Right after a kill -9 the old PostgreSQL's backends may hold its shared memory for a moment: on a
    # loaded machine the first attempt can fail and is retried after a short pause (seen in CI), once.
    assert output.count("could not be restarted") <= 1
    if "could not be restarted" in output:
        assert output.index("could not be restarted") < output.index("embedded PostgreSQL had stopped; restarted")
    assert "Traceback" not in output, output
    assert_stopped_cleanly(code, output)
