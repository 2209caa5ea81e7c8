"""Shared by the benchmarks: CPU time of the server's processes read from /proc, and a private Redis.

CPU time (utime + stime of /proc/<pid>/stat) counts what a process ran, not how long it waited for a
core: on a loaded machine it moves far less than throughput does, so it is the figure to compare.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import redis
from django.db import connection

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float | None:
    """utime + stime of a process and of its children it has reaped (cutime + cstime), in ms (None: it is
    gone). With the children's: a gunicorn worker restarted by max_requests leaves its time in the master's."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return sum(int(value) for value in fields[11:15]) * _TICK_MS  # fields 14-17 of proc(5)


def wakeups(pid: int) -> int | None:
    """Context switches of all of a process's threads (voluntary + involuntary, /proc/<pid>/task/*/status):
    how often it was put on a CPU. An idle process that wakes on a timer switches once per wake-up, so this
    counts wake-ups exactly where CPU time comes in 10 ms ticks."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split(":")[1])
    return total


def process_tree(root: int) -> list[int]:
    """root and its descendants (gunicorn's master and workers, Celery's main and pool processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def database_backends() -> list[int]:
    """PostgreSQL backends connected to this process's database (this process's own too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [pid for (pid,) in cursor.fetchall()]


def snapshot(groups: Mapping[str, Iterable[int]]) -> dict[str, dict[int, float]]:
    return {name: {pid: ms for pid in pids if (ms := cpu_ms(pid)) is not None} for name, pids in groups.items()}


def spent(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], *, trees: Iterable[str] = ()
) -> dict[str, float]:
    """CPU ms per group between two snapshots. A process started meanwhile counts from 0. In a group named in
    `trees` (a process tree whose root reaps its children) one that ended meanwhile is in its parent's
    children time; elsewhere (PostgreSQL backends) it is lost, which the benchmarks avoid by keeping their
    connections alive."""
    trees = set(trees)
    result = {}
    for name, pids in after.items():
        earlier = before.get(name, {})
        if name in trees:
            result[name] = sum(pids.values()) - sum(earlier.values())
        else:
            result[name] = sum(ms - earlier.get(pid, 0.0) for pid, ms in pids.items())
    return result


class PrivateRedis:
    """A redis-server of the benchmark's own (no persistence), so that its CPU time is the benchmark's alone
    and not that of whatever else uses the shared one."""

    def __init__(self, port: int, *, extra_args: Iterable[str] = ()) -> None:
        self.dir = tempfile.mkdtemp(prefix="revenge-bench-redis-")
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.1)

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
