"""Start what Revenge needs, run the app (or any command) on it, and stop everything on the way out.

    python -m revenge.launcher run            # `make run`: services, migrate, admin, honcho (web, worker, beat)
    python -m revenge.launcher exec -- CMD    # `make test`: services, then CMD with their URLs in the env

Embedded PostgreSQL / Redis are started only for the URLs that are not set in the environment.
Ctrl-C or SIGTERM: the signal is passed to the child, the launcher waits for it to exit (so workers can
finish and flush), then stops the embedded services it started.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from revenge.embedded import BASE_DIR, EmbeddedServices, data_dir_from_env

logger = logging.getLogger("revenge.launcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revenge.launcher", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run", help="start the whole server (web, worker, beat) with honcho")
    exec_parser = sub.add_parser("exec", help="run a command with the services started")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="launcher | %(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    command = getattr(args, "command", [])
    command = command[1:] if command[:1] == ["--"] else command
    if args.action == "exec" and not command:
        parser.error("exec needs a command, e.g. `exec -- pytest`")

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
    # The virtualenv's scripts (gunicorn, celery, honcho, pytest) are found whoever started us.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        if args.action == "run":
            return _run_server(env, data_dir)
        return _run_child(command, env)
    finally:
        services.stop()


def _run_server(env: dict[str, str], data_dir: Path) -> int:
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
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(BASE_DIR / "Procfile"), "-d", str(BASE_DIR)]
    return _run_child([*honcho, "-p", env["PORT"]], env)


def _run_child(command: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(command, env=env, cwd=BASE_DIR)

    def forward(signum: int, _frame: object) -> None:
        # A terminal Ctrl-C already reached the child (same process group); a `kill` of the launcher
        # did not. Sending it again is harmless: honcho and gunicorn treat a repeat as the same request.
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
