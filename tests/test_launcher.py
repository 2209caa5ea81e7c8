"""The launcher's supervision of the Procfile (revenge/launcher.py), with real child processes.

Each case runs a Supervisor in a child Python (it installs signal handlers, which only a main thread may)
that stops itself with SIGTERM after `stop_after_s`, as systemd or a Ctrl-C would. The whole `make run`,
with the embedded services, is tests/e2e/test_make_run.py."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

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
