"""The launcher's supervision of the Procfile (revenge/launcher.py), with real child processes.

Each case runs a Supervisor in a child Python (it installs signal handlers, which only a main thread may)
that stops itself with SIGTERM after `stop_after_s`, as systemd or a Ctrl-C would. The whole `make run`,
with the embedded services, is tests/e2e/test_make_run.py."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psycopg
import pytest

from revenge.launcher import procfile_entries
from tests.conftest import BASE_DIR

SUPERVISE = """
import os, signal, sys, threading, logging
from pathlib import Path
from revenge import launcher
from revenge.embedded import EmbeddedServices

logging.basicConfig(level=logging.INFO, format="launcher | %(message)s", stream=sys.stdout)
launcher.QUICK_STOP_AFTER_S, launcher.STOP_TIMEOUT_S = {quick_s}, {kill_s}
threading.Timer({stop_after_s}, os.kill, [os.getpid(), signal.SIGTERM]).start()
entries = {entries!r}
services = EmbeddedServices(data_dir=Path({data_dir!r}))  # none started: nothing to watch
sys.exit(launcher.Supervisor(entries, env=dict(os.environ), services=services).run())
"""


def supervise(tmp_path: Path, entries: list[tuple[str, str]], *, stop_after_s: float, quick_s: float = 15,
              kill_s: float = 30) -> subprocess.CompletedProcess[str]:  # fmt: skip
    script = SUPERVISE.format(entries=entries, stop_after_s=stop_after_s, quick_s=quick_s, kill_s=kill_s,
                              data_dir=str(tmp_path))  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_process_that_keeps_dying_is_restarted_with_growing_pauses_one_line_each(tmp_path):
    run = supervise(tmp_path, [("crash", "sh -c 'echo starting; exit 3'"), ("steady", "sleep 30")], stop_after_s=4.5)

    restarts = [line for line in run.stdout.splitlines() if "crash.1 exited" in line]
    assert restarts[:2] == [
        "launcher | crash.1 exited with status 3; restarting it in 1 s",
        "launcher | crash.1 exited with status 3; restarting it in 2 s",
    ]
    starts = re.findall(r"^\d\d:\d\d:\d\d crash\.1 +\| starting$", run.stdout, flags=re.MULTILINE)
    assert len(starts) - len(restarts) in (0, 1)  # the last start may have been after the last exit seen
    assert "steady.1 exited" not in run.stdout  # the others are left alone
    assert "launcher | SIGTERM received: stopping" in run.stdout
    assert "launcher | steady.1 stopped (exit -15)" in run.stdout
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_process_that_ignores_sigterm_gets_sigquit_then_sigkill_and_the_exit_code_says_so(tmp_path):
    stubborn = "sh -c 'trap \"\" TERM QUIT; while true; do sleep 0.1; done'"
    run = supervise(tmp_path, [("stubborn", stubborn)], stop_after_s=1.5, quick_s=0.5, kill_s=1.5)

    lines = [line for line in run.stdout.splitlines() if line.startswith("launcher | stubborn.1")]
    assert [line.split(" after ")[0] for line in lines] == [
        "launcher | stubborn.1 still running",
        "launcher | stubborn.1 still running",
        "launcher | stubborn.1 stopped (exit -9)",
    ]
    assert lines[0].endswith("sending SIGQUIT") and lines[1].endswith("sending SIGKILL")
    assert run.returncode == 1


def test_procfile_entries_are_the_shipped_procfile_lines(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\nweb: gunicorn app -b :$PORT\n\nworker: celery -A x worker -Q a:b\n")

    assert procfile_entries(procfile) == [("web", "gunicorn app -b :$PORT"), ("worker", "celery -A x worker -Q a:b")]
    assert [name for name, _ in procfile_entries(BASE_DIR / "Procfile")] == ["web", "worker", "interactive", "beat"]


def launcher(*args: str, data_dir: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "revenge.launcher", *args],
        cwd=BASE_DIR,
        env={**env, "REVENGE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_an_embedded_postgresql_16_folder_stops_the_start_with_what_to_do_and_is_left_as_it_was(tmp_path):
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "base").mkdir()

    run = launcher("exec", "--", "true", data_dir=tmp_path)

    assert run.returncode == 1
    assert f"could not start the embedded services: {pgdata} holds a PostgreSQL 16 database" in run.stderr
    assert "`.venv/bin/python -m revenge.launcher upgrade-db`" in run.stderr
    assert sorted(path.name for path in pgdata.iterdir()) == ["PG_VERSION", "base"]
    assert (pgdata / "PG_VERSION").read_text() == "16\n"


@pytest.fixture
def own_tmp_path():
    # Not pytest's tmp_path: as root, the servers run as their own system users, and pytest's base folder
    # (mode 0700, pruned by other pytest sessions of the same user) is theirs to traverse only when made so.
    with tempfile.TemporaryDirectory(prefix="revenge-test-upgrade-") as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pgserver") is None, reason="needs pgserver 0.1.4 (requirements-dev)")
def test_upgrade_db_carries_an_embedded_postgresql_16_database_into_18_and_keeps_the_old_folder(own_tmp_path):
    import pgserver

    tmp_path = own_tmp_path

    old = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    with psycopg.connect(old.get_uri("postgres"), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "revenge"')
    with psycopg.connect(old.get_uri("revenge"), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO kept VALUES (1, 'Motörhead'), (2, 'Sigur Rós')")
    old.cleanup()

    upgrade = launcher("upgrade-db", data_dir=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"the old folder is kept as {tmp_path / 'pgdata-16'}" in upgrade.stderr
    assert (tmp_path / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    assert (tmp_path / "pgdata-16" / "PG_VERSION").read_text().strip() == "16"

    query = "SELECT string_agg(name, ',' ORDER BY id) || ' ' || current_setting('server_version_num')::int / 10000"
    query += " FROM kept"
    script = f"import os, psycopg; print(psycopg.connect(os.environ['DATABASE_URL']).execute({query!r}).fetchone()[0])"
    run = launcher("exec", "--", sys.executable, "-c", script, data_dir=tmp_path)
    assert run.stdout.strip() == "Motörhead,Sigur Rós 18", run.stderr
