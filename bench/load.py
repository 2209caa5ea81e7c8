"""Shared by the benchmarks: a small closed-loop HTTP load generator (N threads, keep-alive connections),
a free port, and the URL of the database in use for the servers a benchmark starts."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from django.db import connection


@dataclass
class LoadResult:
    requests: int
    seconds: float
    bytes_received: int
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def describe(self) -> str:
        mb_s = self.bytes_received / self.seconds / 1e6
        return (
            f"{self.rps:8.0f} req/s  {mb_s:7.1f} MB/s  p50 {self.percentile(50):6.1f} ms  "
            f"p99 {self.percentile(99):6.1f} ms  errors {self.errors}"
        )


def run_load(
    port: int,
    request: Callable[[int], tuple[str, str, bytes | None, dict[str, str]]],
    *,
    clients: int,
    seconds: float,
    expect: int = 200,
) -> LoadResult:
    """`request(client_index)` gives (method, path, body, headers) for each call of that client."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    totals = {"requests": 0, "bytes": 0, "errors": 0}
    latencies: list[float] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        count = size = errors = 0
        while time.perf_counter() < stop:
            method, path, body, headers = request(index)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append((time.perf_counter() - started) * 1000)
            count += 1
            size += len(data)
            if response.status != expect:
                errors += 1
        conn.close()
        with lock:
            totals["requests"] += count
            totals["bytes"] += size
            totals["errors"] += errors
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(totals["requests"], elapsed, totals["bytes"], latencies, totals["errors"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database this process uses (a benchmark's throw-away one), for child processes."""
    params = connection.get_connection_params()
    user = quote(params.get("user") or "")
    password = f":{quote(params['password'])}" if params.get("password") else ""
    host = params.get("host") or ""
    port = f":{params['port']}" if params.get("port") else ""
    name = connection.settings_dict["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{name}?host={quote(host)}"
    return f"postgresql://{user}{password}@{host}{port}/{name}"
