"""Idle benchmark: the CPU the whole stack burns when nobody listens.

    make bench-idle                  # 60 s measured after 20 s of settling
    make bench-idle BENCH_SECONDS=120

Starts the stack as `make run` does (revenge.launcher run: migrate, then the Procfile's web, workers and
beat) on a throw-away database and a redis-server of its own (so the shared one's other users do not
count), waits until it answers /healthz and has settled, then sums over BENCH_SECONDS the CPU time
(utime + stime from /proc, the children each reaps included) of the launcher and every process under it,
the database's PostgreSQL backends and the Redis. Prints ms of CPU per second for the whole stack
(target <= 5 ms/s, issue #22) and per process, and the Celery tasks that ran meanwhile (what woke up).
CPU time is what a NAS or a small board pays; it moves far less with the machine's load than wall times.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.db import connection  # noqa: E402

from bench.cpu import PrivateRedis, cpu_ms, database_backends, process_tree, snapshot, spent, wakeups  # noqa: E402
from bench.load import database_url, free_port  # noqa: E402
from revenge.embedded import REDIS_HZ  # noqa: E402

TARGET_MS_PER_S = 5.0
_TASK_DONE = re.compile(r"Task (\S+)\[[^\]]+\] succeeded")


def _command_name(pid: int) -> str:
    """A short name for a process: gunicorn master/worker, celery worker/beat, the launcher."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = " ".join(arg.decode(errors="replace") for arg in args if arg)
    if "gunicorn" in line:
        return "gunicorn"
    if "celery" in line and " beat" in line:
        return "celery beat"
    if "celery" in line and "transcode.interactive" in line:
        return "celery interactive"
    if "celery" in line:
        return "celery worker"
    if "revenge.launcher" in line:
        return "launcher"
    return line[:40]


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "60")))
    parser.add_argument("--settle", type=float, default=float(os.environ.get("BENCH_SETTLE", "20")))
    args = parser.parse_args()
    # With the embedded Redis's timer (`make run` starts that one), the rest of its config is a test's.
    redis = PrivateRedis(free_port(), extra_args=["--hz", str(REDIS_HZ)])
    data_dir = Path(tempfile.mkdtemp(prefix="revenge-bench-idle-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CELERY_")},
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis.url,
        "PORT": str(port),
        "REVENGE_DATA_DIR": str(data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "prometheus"),
    }
    env.pop("REVENGE_ADMIN_PASSWORD", None)
    log_lines: list[tuple[float, str]] = []
    stack = subprocess.Popen(
        [sys.executable, "-m", "revenge.launcher", "run"], cwd=BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
    )  # fmt: skip

    def read_output() -> None:
        assert stack.stdout is not None
        for line in stack.stdout:
            log_lines.append((time.monotonic(), line.rstrip()))

    threading.Thread(target=read_output, daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while not _healthy(port):
            if stack.poll() is not None or time.monotonic() > deadline:
                print("\n".join(line for _, line in log_lines[-40:]))
                raise SystemExit("the stack did not start")
            time.sleep(0.5)
        time.sleep(args.settle)

        def groups() -> dict[str, list[int]]:
            return {"stack": process_tree(stack.pid), "postgres": database_backends(), "redis": [redis.pid]}

        before_pids = groups()
        per_process_before = {pid: cpu_ms(pid) or 0.0 for pid in before_pids["stack"]}
        watched = [*before_pids["stack"], redis.pid]
        wakeups_before = {pid: wakeups(pid) or 0 for pid in watched}
        before = snapshot(before_pids)
        started = time.monotonic()
        time.sleep(args.seconds)
        after_pids = groups()
        after = snapshot(after_pids)
        elapsed = time.monotonic() - started
        per_process = collections.Counter[str]()
        for pid in after_pids["stack"]:
            per_process[_command_name(pid)] += ((cpu_ms(pid) or 0.0) - per_process_before.get(pid, 0.0)) / elapsed
        # Only the processes there at both ends: one started meanwhile would count its start-up.
        woke = collections.Counter[str]()
        for pid, count in wakeups_before.items():
            if (now := wakeups(pid)) is not None:
                woke["redis" if pid == redis.pid else _command_name(pid)] += (now - count) / elapsed
        tasks = collections.Counter(
            match.group(1) for at, line in log_lines if started <= at and (match := _TASK_DONE.search(line))
        )
    finally:
        stack.terminate()
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
        redis.stop()
        connection.close()
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(data_dir, ignore_errors=True)

    cpu = spent(before, after, trees=["stack"])
    total = sum(cpu.values()) / elapsed
    print(f"idle benchmark: the stack of `make run` idle for {elapsed:.0f} s after {args.settle:.0f} s of settling, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  whole stack: {total:.2f} ms CPU/s   target <= {TARGET_MS_PER_S:.0f} ms/s   "
          f"{total / TARGET_MS_PER_S:.2f}x the target")  # fmt: skip
    for name, ms in cpu.items():
        print(f"    {name:20} {ms / elapsed:6.2f} ms/s")
    print("  per process (the stack):")
    for name, ms_s in per_process.most_common():
        print(f"    {name:20} {ms_s:6.2f} ms/s")
    print(f"  wake-ups per second (context switches of every thread): {sum(woke.values()):.1f}")
    for name, per_s in woke.most_common():
        print(f"    {name:20} {per_s:6.1f} /s")
    print(f"  Celery tasks run in those {elapsed:.0f} s:")
    for name, count in tasks.most_common():
        print(f"    {count:4}  {name}")
    return 0 if total <= TARGET_MS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
