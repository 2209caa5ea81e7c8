"""Worker-model benchmark: the same two requests served by several web server configurations, side by side.

    make bench-workers                                    # 16 and 64 connections, 12 s per measure
    make bench-workers BENCH_SECONDS=30 BENCH_CLIENTS="16 64"

Every configuration runs at once, each its own server on the same database and Redis; the measures are
interleaved in short slices (config after config, then again), so each sees the same mix of quiet and busy
moments of a shared machine. For each: the trivial DRF view and the buffered progress PUT of
bench/progress.py, at each connection count: req/s, p50, p99 and server CPU per request (gunicorn or uvicorn
processes, the PostgreSQL backends, the benchmark's own Redis; from /proc). CPU per request is the figure
to compare on a loaded machine; throughput and latencies move with the load.

Configurations: the shipped deploy/gunicorn.conf.py (gthread, WEB_CONCURRENCY x GUNICORN_THREADS), fewer
processes or threads, sync workers, and, when installed (they are not Revenge's dependencies), gunicorn's
gevent worker and uvicorn (ASGI: Django runs the sync views in a thread each). BENCH_CONFIGS picks some by
name (comma-separated).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

# ruff: noqa: T201 - a benchmark prints its figures

from bench.cpu import PrivateRedis  # noqa: E402
from bench.load import free_port  # noqa: E402

if __name__ == "__main__":
    _redis = PrivateRedis(free_port())
    os.environ["REDIS_URL"] = _redis.url
    for _name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(_name, None)

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench import progress  # noqa: E402  (sets Django up)
from bench.cpu import database_backends, process_tree, snapshot, spent  # noqa: E402

SLICES = 3
APP = "bench.progress:application"


@dataclass
class Config:
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    needs: str | None = None  # a module that must be importable (not a dependency of Revenge)


def _gunicorn(*args: str) -> tuple[str, ...]:
    return (*progress.GUNICORN, *args, APP)


CONFIGS = [
    Config("gthread 5x4", _gunicorn(), {"WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "4"}),
    Config("gthread 3x2", _gunicorn(), {"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "2"}),
    Config("gthread 2x4", _gunicorn(), {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}),
    Config("gthread 3x1", _gunicorn(), {"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "1"}),
    Config("gthread 2x2", _gunicorn(), {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"}),
    Config("sync 3", _gunicorn("--worker-class", "sync"), {"WEB_CONCURRENCY": "3"}),
    Config("sync 5", _gunicorn("--worker-class", "sync"), {"WEB_CONCURRENCY": "5"}),
    Config(
        "gevent 3",
        _gunicorn("--worker-class", "gevent", "--worker-connections", "256"),
        {"WEB_CONCURRENCY": "3"},
        needs="gevent",
    ),  # fmt: skip
    Config(
        "uvicorn 3",
        (
            "-m",
            "uvicorn",
            "--port",
            "{port}",
            "--workers",
            "3",
            "--no-access-log",
            "--lifespan",
            "off",
            "bench.progress:asgi_application",
        ),
        needs="uvicorn",
    ),  # fmt: skip
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default=os.environ.get("BENCH_CLIENTS", "16 64"))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "12")))
    parser.add_argument("--configs", default=os.environ.get("BENCH_CONFIGS", ""))
    parser.add_argument("--loaders", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)))
    args = parser.parse_args()
    counts = [int(count) for count in args.clients.replace(",", " ").split()]
    wanted = {name.strip() for name in args.configs.split(",") if name.strip()}
    configs = []
    for config in CONFIGS:
        if wanted and config.name not in wanted:
            continue
        if config.needs and importlib.util.find_spec(config.needs) is None:
            print(f"  {config.name}: skipped ({config.needs} is not installed)")
            continue
        configs.append(config)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings.CACHES["default"]["KEY_PREFIX"] = prefix
    metrics_dir = Path(tempfile.mkdtemp(prefix="revenge-bench-metrics-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    servers: dict[str, progress.Server] = {}
    try:
        tracks, users = progress.setup(max(counts))
        requests = {
            "trivial": [("/bench/trivial", key, f"device-{n}") for n, (_, key) in enumerate(users)],
            "progress": [(f"/api/v1/progress/{tracks[n].pk}", key, f"device-{n}") for n, (_, key) in enumerate(users)],
        }
        for number, config in enumerate(configs):
            servers[config.name] = progress.Server(
                mode="buffered", prefix=prefix, metrics_dir=metrics_dir / str(number), command=config.command,
                extra_env=config.env,
            )  # fmt: skip
        measures = {
            (config.name, count, kind): progress.Measure()
            for config in configs
            for count in counts
            for kind in requests
        }
        for config in configs:  # warm-up: every worker imports, connects, prepares
            for clients in requests.values():
                progress.Measure().add(servers[config.name].port, clients[: max(counts)], 2, args.loaders)
        for count in counts:
            for _ in range(SLICES):
                for config in configs:
                    server = servers[config.name]
                    for kind, clients in requests.items():
                        groups = {"server": process_tree(server.process.pid), "postgres": database_backends(),
                                  "redis": [_redis.pid]}  # fmt: skip
                        before = snapshot(groups)
                        measure = measures[(config.name, count, kind)]
                        measure.add(server.port, clients[:count], args.seconds / SLICES, args.loaders)
                        groups["server"] = process_tree(server.process.pid)
                        measure.add_cpu(spent(before, snapshot(groups), trees=["server"]))
        progress.progress_buffer_flush()
    finally:
        for server in servers.values():
            server.stop()
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        _redis.stop()

    print(f"worker models: {args.seconds:.0f} s per measure in {SLICES} slices, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    for count in counts:
        print(f"  {count} connections            trivial view: req/s   p99 ms  CPU ms/req   "
              "progress PUT: req/s   p99 ms  CPU ms/req   (PUT CPU: server / postgres / redis)")  # fmt: skip
        for config in configs:
            row = []
            for kind in requests:
                measure = measures[(config.name, count, kind)]
                summary = measure.summary()
                cpu = sum(measure.cpu_ms.values()) / summary["requests"]
                errors = f" ({summary['errors']} errors)" if summary["errors"] else ""
                row.append(f"{summary['rps']:8.0f} {summary['p99']:8.1f} {cpu:11.2f}{errors}")
            put = measures[(config.name, count, "progress")]
            parts = " / ".join(f"{ms / put.summary()['requests']:.2f}" for ms in put.cpu_ms.values())
            print(f"  {config.name:26} {row[0]}          {row[1]}   ({parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
