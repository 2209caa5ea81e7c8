"""gunicorn with deploy/gunicorn.conf.py: several worker processes, one /metrics that adds them up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import BASE_DIR, free_port, wait_for

pytestmark = pytest.mark.slow

HEALTHZ_SAMPLE = "django_http_requests_total_by_view_transport_method_total"


class Server:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.healthz_answered = 0

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
            if path == "/healthz":
                self.healthz_answered += 1
            return response.status, response.read().decode()

    def healthy(self) -> bool:
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False


def healthz_count_by_file(multiproc_dir: Path) -> dict[int, float]:
    """Each worker process's own count of /healthz requests, read from its own file."""
    counts = {}
    for path in multiproc_dir.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == HEALTHZ_SAMPLE and sample.labels.get("view") == "healthz" and sample.value:
                    counts[int(path.stem.rsplit("_", 1)[-1])] = sample.value
    return counts


def test_counters_from_every_gunicorn_worker_add_up_even_after_one_exits(process_env, tmp_path):
    port = free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = {**process_env, "PORT": str(port), "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(f"http://127.0.0.1:{port}")
    try:
        wait_for(server.healthy, timeout_s=60, what="gunicorn serving", process=process)
        for _ in range(20):
            assert server.get("/healthz")[0] == 200
        # Stop a worker that answered: gunicorn starts a new one, and what the old one counted must
        # still be in the sum (its file stays; child_exit only retires its live gauges).
        first_workers = healthz_count_by_file(multiproc_dir)
        retired = next(iter(first_workers))
        os.kill(retired, signal.SIGTERM)
        wait_for(lambda: not _alive(retired), timeout_s=30, what="worker exit")
        wait_for(server.healthy, timeout_s=30, what="serving after the worker exit", process=process)
        for _ in range(20):
            assert server.get("/healthz")[0] == 200
        status, text = server.get("/metrics")
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert status == 200
    match = re.search(
        rf'^{HEALTHZ_SAMPLE}\{{method="GET",transport="http",view="healthz"\}} (\S+)$', text, re.MULTILINE
    )
    assert match, text[:2000]
    assert float(match.group(1)) == server.healthz_answered
    per_worker = healthz_count_by_file(multiproc_dir)
    assert retired in per_worker and len(per_worker) >= 2, per_worker
    assert sum(per_worker.values()) == server.healthz_answered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0) until the master reaps it; count it as gone once it is a zombie.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
