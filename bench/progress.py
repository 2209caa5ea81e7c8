"""Progress benchmark: the progress PUT under gunicorn against a trivial DRF view on the same server.

    make bench-progress                               # 32 clients, 15 s per measure
    make bench-progress BENCH_CLIENTS=64 BENCH_SECONDS=30
    make bench-progress BENCH_CLIENTS=16 BENCH_PROFILE=var/profile   # py-spy the workers (profile_top.py)
    .venv/bin/python bench/progress.py --quick      # (a) and (b) only, no 10 000-entry flush

gunicorn runs with the deployment config (deploy/gunicorn.conf.py, Prometheus multiprocess mode) and
serves, in one run:
(a) a trivial DRF view behind the same token authentication (the ceiling),
(b) PUT /api/v1/progress/<track> in buffered mode (Redis, Lua compare-and-set),
(c) the same PUT in direct mode (a PostgreSQL transaction per update),
each for BENCH_SECONDS (in 3 interleaved slices) with BENCH_CLIENTS concurrent keep-alive clients
(distinct users, devices and tracks). Prints req/s, p50 and p99 and the ratios b/a (target >= 0.6) and
c/a, and the p99 ratios. Server CPU per request, summed from /proc over the gunicorn master and
workers, the PostgreSQL backends of the database, a Redis of the benchmark's own (started here, so that
nobody else's commands count) and, for (b), the flush of what the pass buffered (run here after each
slice): ms per request and the ratio to (a). CPU time is the figure to compare on a loaded machine;
throughput and latencies move with the load. The issue's targets (#22): <= 3 ms CPU per progress update,
p99 <= 2x the trivial view's at 16 connections (`make bench-progress BENCH_CLIENTS=16`).
Then the flush of 10 000 buffered updates, as new rows and as updates of existing rows: seconds
(target < 1 s) and rows/s.
The database is a throw-away one (created and dropped here), and so is the Redis.

gunicorn imports this module too (`bench.progress:application`): the trivial view needs a URL, and the
server's own URL configuration has none.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

if __name__ == "__main__":
    # Before Django reads REDIS_URL: this process, its gunicorns and their Celery broker use this Redis.
    from bench.cpu import PrivateRedis
    from bench.load import free_port

    _redis = PrivateRedis(free_port())
    os.environ["REDIS_URL"] = _redis.url
    for _name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(_name, None)

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from apps.accounts.services import api_token_issue  # noqa: E402
from apps.library.models import Library, LibraryAccess, LibraryKind, Track  # noqa: E402
from apps.playback.models import PlaybackProgress  # noqa: E402
from apps.playback.progress import buffer  # noqa: E402
from apps.playback.progress.rules import ProgressAction, ProgressChange, now_us  # noqa: E402
from apps.playback.services import progress_buffer_flush  # noqa: E402
from bench.cpu import database_backends, process_tree, snapshot, spent  # noqa: E402
from bench.load import database_url, free_port  # noqa: E402

TRACK_MS = 600_000
FLUSH_USERS = FLUSH_TRACKS = 100  # 10 000 (user, track) entries
MODES = ("buffered", "direct")
SLICES = 3


class TrivialView(APIView):
    """The ceiling: the same authentication and JSON parsing, no work."""

    def put(self, request: Request) -> Response:
        return Response({"ok": True, "position_ms": request.data.get("position_ms")})


urlpatterns = [path("bench/trivial", TrivialView.as_view()), path("", include("revenge.urls"))]
_handler: WSGIHandler | None = None


def application(environ, start_response):
    """The server's application with the trivial view added (what gunicorn serves here)."""
    global _handler
    if _handler is None:
        settings.ROOT_URLCONF = __name__
        _handler = WSGIHandler()
    return _handler(environ, start_response)


_asgi_handler: ASGIHandler | None = None


async def asgi_application(scope, receive, send):
    """The same under an ASGI server (bench/workers.py's uvicorn): Django runs the sync views in threads."""
    global _asgi_handler
    if _asgi_handler is None:
        settings.ROOT_URLCONF = __name__
        _asgi_handler = ASGIHandler()
    await _asgi_handler(scope, receive, send)


# --- load generator ---------------------------------------------------------------------------------


def _client(port: int, url: str, key: str, device: str, until: float, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies, errors, position = [], 0, 0
    while time.monotonic() < until:
        position = (position + 1000) % TRACK_MS
        body = json.dumps({"position_ms": position, "device_id": device})
        started = time.perf_counter()
        try:
            conn.request("PUT", url, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1
    conn.close()
    out.append((latencies, errors))


def _load_process(args: tuple) -> tuple[list[float], int]:
    port, clients, until = args
    out: list = []
    threads = [threading.Thread(target=_client, args=(port, *client, until, out)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [latency for latencies, _ in out for latency in latencies], sum(errors for _, errors in out)


@dataclass
class Measure:
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0
    cpu_ms: dict[str, float] = field(default_factory=dict)

    def add_cpu(self, spent_ms: dict[str, float]) -> None:
        for name, ms in spent_ms.items():
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + ms

    def add(self, port: int, clients: list[tuple[str, str, str]], seconds: float, processes: int) -> None:
        """clients: (url, token key, device id), spread over `processes` load processes."""
        until = time.monotonic() + seconds
        chunks = [(port, clients[i::processes], until) for i in range(processes)]
        started = time.monotonic()
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_load_process, chunks)
        self.elapsed_s += time.monotonic() - started
        self.latencies += [latency for chunk, _ in results for latency in chunk]
        self.errors += sum(errors for _, errors in results)

    def summary(self) -> dict[str, float]:
        latencies = sorted(self.latencies)
        if not latencies:
            raise SystemExit(f"no request succeeded ({self.errors} errors)")
        return {
            "rps": len(latencies) / self.elapsed_s,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "errors": self.errors,
            "requests": len(latencies),
        }


# --- servers ----------------------------------------------------------------------------------------


GUNICORN = ("-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--access-logfile", "/dev/null")


class Server:
    """gunicorn with the deployment config serving `application` below; `command` (arguments of the Python
    interpreter, {port} filled in) and `extra_env` start another server or worker model (bench/workers.py)."""

    def __init__(
        self,
        *,
        mode: str,
        prefix: str,
        metrics_dir: Path,
        command: tuple[str, ...] = (*GUNICORN, "bench.progress:application"),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "PORT": str(self.port),
            "PROGRESS_WRITE_MODE": mode,
            "CACHE_KEY_PREFIX": prefix,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, *(part.format(port=self.port) for part in command)],
            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {' '.join(command)}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


# --- the run ----------------------------------------------------------------------------------------


def setup(clients: int) -> tuple[list[Track], list[tuple[object, str]]]:
    library = Library.objects.create(name="bench", kind=LibraryKind.MUSIC, root_paths=["/nonexistent"])
    count = max(clients, FLUSH_TRACKS)
    tracks = Track.objects.bulk_create(
        Track(library=library, group_key=f"t{n}", title=f"Track {n}", duration_ms=TRACK_MS, source_fingerprint="b")
        for n in range(count)
    )
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench{n}") for n in range(max(clients, FLUSH_USERS))
    )
    LibraryAccess.objects.bulk_create(LibraryAccess(user=user, library=library) for user in users)
    return tracks, [(user, api_token_issue(user=user, name="bench")[1]) for user in users[:clients]]


def fill_buffer(users, tracks) -> None:
    """10 000 entries through the buffer's Lua script, as PUTs leave them (pipelined to save time)."""
    client = buffer._client()
    now = now_us()
    pipeline = client.pipeline(transaction=False)
    for user in users:
        for n, track in enumerate(tracks):
            change = ProgressChange(
                action=ProgressAction.REPORT, user_id=user.pk, track_id=track.pk,
                position_ms=1000 * (n + 1) + now % 1000, duration_ms=TRACK_MS, device_id="bench", state="playing",
                client_updated_us=now, now_us=now, threshold_ms=TRACK_MS // 2,
            )  # fmt: skip
            keys, args = buffer.record_args(change=change, seed=None)
            buffer._RECORD(keys=keys, args=args, client=pipeline)
        pipeline.execute()
    assert buffer.buffer_dirty_count() == len(users) * len(tracks)


def timed_flush() -> tuple[float, int]:
    started = time.perf_counter()
    rows = progress_buffer_flush()
    return time.perf_counter() - started, rows or 0


def cpu_snapshot(server: Server) -> dict[str, dict[int, float]]:
    """gunicorn (master and workers), PostgreSQL backends of the test database (both servers' and this
    process's: only the server under load and the flush do anything), the private Redis."""
    return snapshot(
        {"gunicorn": process_tree(server.process.pid), "postgres": database_backends(), "redis": [_redis.pid]}
    )


def profiler(server: Server, folder: Path, key: str) -> subprocess.Popen:
    """py-spy sampling the gunicorn workers (the master's children) while a slice runs; the samples of every
    slice of a measure are appended to one collapsed-stack file, <folder>/<key>.txt (flamegraph.pl, speedscope
    and `bench/profile_top.py` read it). Sampling costs the workers little but not nothing: a profiled run's
    CPU figures are not the ones to quote."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    out = folder / f"{key}.{len(list(folder.glob(f'{key}.*')))}.txt"
    return subprocess.Popen(
        [spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--nonblocking", "--rate", "250",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


NAMES = {"a": "trivial DRF view (ceiling)", "b": "progress PUT, buffered", "c": "progress PUT, direct"}


def report(
    args: argparse.Namespace, results: dict[str, dict[str, float]], measures: dict[str, Measure]
) -> dict[str, float]:
    """Prints throughput, latencies and server CPU per request of each measure; returns the CPU ms."""
    workers = os.environ.get("WEB_CONCURRENCY") or min(max(os.cpu_count() or 1, 2), 8)  # deploy/gunicorn.conf.py
    extra = f" {os.environ['GUNICORN_CMD_ARGS']}" if os.environ.get("GUNICORN_CMD_ARGS") else ""
    print(f"progress benchmark: gunicorn {workers} workers x {os.environ.get('GUNICORN_THREADS', '4')} threads{extra}, "
          f"{args.clients} clients over {args.loaders} load processes, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    names = {key: name for key, name in NAMES.items() if key in results}
    for key, name in names.items():
        r = results[key]
        print(f"  ({key}) {name:28} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   p99 {r['p99']:6.1f} ms"
              f"   errors {r['errors']}")  # fmt: skip
    ratios = {key: results[key]["rps"] / results["a"]["rps"] for key in names if key != "a"}
    print("  " + "   ".join(f"{key}/a = {ratio:.2f}" for key, ratio in ratios.items()) + "   (target: b/a >= 0.6)")
    p99 = {key: results[key]["p99"] / results["a"]["p99"] for key in names if key != "a"}
    print("  p99 " + "   ".join(f"{key}/a = {ratio:.2f}" for key, ratio in p99.items())
          + "   (target at 16 connections: b/a <= 2)")  # fmt: skip
    print(f"  server CPU per request (load average {os.getloadavg()[0]:.1f} at the end):")
    per_request = {}
    for key, name in names.items():
        cpu = measures[key].cpu_ms
        requests = results[key]["requests"]
        per_request[key] = sum(cpu.values()) / requests
        parts = "  ".join(f"{part} {ms / requests:.2f}" for part, ms in cpu.items() if part != "flush" or key == "b")
        ratio = per_request[key] / per_request["a"]
        print(f"  ({key}) {name:28} {per_request[key]:6.2f} ms   ({parts})   {ratio:.2f}x (a)")
    print(f"  progress PUT, buffered: {per_request['b']:.2f} ms CPU per update, target <= 3 ms")
    return per_request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=int(os.environ.get("BENCH_CLIENTS", "32")))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "15")))
    parser.add_argument("--loaders", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)))
    parser.add_argument("--profile", type=Path, default=os.environ.get("BENCH_PROFILE") or None,
                        help="py-spy every measured slice of the gunicorn workers into this folder")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="(a) and (b) only, no 10 000-entry flush")
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings.CACHES["default"]["KEY_PREFIX"] = prefix
    metrics_dir = Path(tempfile.mkdtemp(prefix="revenge-bench-metrics-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        tracks, users = setup(args.clients)
        trivial = [("/bench/trivial", key, f"device-{n}") for n, (_, key) in enumerate(users)]
        progress = [(f"/api/v1/progress/{tracks[n].pk}", key, f"device-{n}") for n, (_, key) in enumerate(users)]
        modes = MODES[:1] if args.quick else MODES
        servers = {mode: Server(mode=mode, prefix=prefix, metrics_dir=metrics_dir / mode) for mode in modes}
        plan = [("a", "buffered", trivial), ("b", "buffered", progress), ("c", "direct", progress)][: len(modes) + 1]
        measures = {key: Measure() for key, _, _ in plan}
        try:
            for _, mode, clients in plan:  # warm-up: connections, prepared statements, Redis entries
                Measure().add(servers[mode].port, clients, 2, args.loaders)
            # Interleaved slices rather than one block each: a shared machine's load drifts, and each
            # measure then sees the same mix of quiet and busy moments.
            for _ in range(SLICES):
                for key, mode, clients in plan:
                    spy = profiler(servers[mode], args.profile, key) if args.profile else None
                    before = cpu_snapshot(servers[mode])
                    measures[key].add(servers[mode].port, clients, args.seconds / SLICES, args.loaders)
                    if spy:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(timeout=60)
                    flush_ms = 0.0
                    if key == "b":  # what this pass buffered, flushed as beat would (its Redis and SQL count above)
                        started = time.process_time()
                        progress_buffer_flush()
                        flush_ms = (time.process_time() - started) * 1000
                    measures[key].add_cpu({**spent(before, cpu_snapshot(servers[mode]), trees=["gunicorn"]),
                                           "flush": flush_ms})  # fmt: skip
        finally:
            for server in servers.values():
                server.stop()
        progress_buffer_flush()
        results = {key: measure.summary() for key, measure in measures.items()}
        if args.quick:
            per_request = report(args, results, measures)
            return 0 if per_request["b"] <= 3 else 1

        user_model = get_user_model()
        flush_users = list(user_model.objects.order_by("pk")[:FLUSH_USERS])
        flush_tracks = tracks[:FLUSH_TRACKS]
        PlaybackProgress.objects.all().delete()  # the flush of new rows starts from an empty table
        fill_buffer(flush_users, flush_tracks)
        insert_s, inserted = timed_flush()
        fill_buffer(flush_users, flush_tracks)
        update_s, updated = timed_flush()
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        _redis.stop()

    per_request = report(args, results, measures)
    print(
        f"  flush of {inserted} buffered updates (new rows):      {insert_s:.3f} s  ({inserted / insert_s:,.0f} rows/s)"
    )
    print(f"  flush of {updated} buffered updates (existing rows): {update_s:.3f} s  ({updated / update_s:,.0f} rows/s)"
          "   target < 1 s")  # fmt: skip
    buffered_ratio = results["b"]["rps"] / results["a"]["rps"]
    ok = (
        per_request["b"] <= 3
        and buffered_ratio >= 0.6
        and max(insert_s, update_s) < 1
        and inserted == updated == FLUSH_USERS * FLUSH_TRACKS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
