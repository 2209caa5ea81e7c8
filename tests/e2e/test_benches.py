"""The benchmarks the README quotes still run: the two that start the whole serving path (nginx, gunicorn,
a 1 GiB-class download) are run small here. Their figures are not asserted (shared machines are noisy);
what is asserted is that they complete, measure what they say, and report no errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_database_url
from tests.e2e.nginx import nginx_available

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def run_bench(script: str, **env: str) -> str:
    # Its own database: a benchmark creates and drops test_<name> of the URL it is given, which must not
    # be this test run's database.
    environment = {**os.environ, "DATABASE_URL": child_database_url("revenge_bench_smoke"), **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, f"bench/{script}"], cwd=BASE_DIR, env=environment, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_memory_benchmark_streams_and_reports_the_workers_memory():
    out = run_bench("memory.py", BENCH_MEMORY_MIB="64")

    idle = float(re.search(r"\(a\) worker warm and idle \(ceiling\)\s+RSS\s+([\d.]+) MiB", out).group(1))
    downloads = re.findall(r"\s+(\d+) MiB\s+\d+ MiB/s\s+peak RSS\s+([\d.]+) MiB", out)
    assert [int(size) for size, _peak in downloads] == [16, 64, 64], out  # a quarter of the file, the file twice
    assert 30 < idle < 1000 and all(float(peak) >= idle for _size, peak in downloads), out
    assert re.search(r"peak / idle = [\d.]+; 64 MiB vs 16 MiB through the generator: [-+][\d.]+ MiB", out), out


@pytest.mark.skipif(
    not (nginx_available() and shutil.which("wrk")) and not os.environ.get("REVENGE_REQUIRE_SYSTEM_TOOLS"),
    reason="needs nginx and wrk (.ci/run installs them)",
)
def test_proxy_benchmark_measures_all_three_paths_without_errors():
    out = run_bench("proxy.py", BENCH_SECONDS="3")

    for label in ("(a) nginx static location", "(b) nginx signed /hls/", "(c) Django /hls/ view"):
        line = next(line for line in out.splitlines() if label in line)
        assert float(re.search(r"([\d.]+) req/s", line).group(1)) > 0 and "errors" not in line, line
    assert re.search(r"b/a = [\d.]+ \(target >= 0\.9\)", out), out
    for label in ("(f) nginx static location", "(g) nginx signed /art/"):  # a cover, the same way
        line = next(line for line in out.splitlines() if label in line)
        assert float(re.search(r"([\d.]+) req/s", line).group(1)) > 0 and "errors" not in line, line
    assert re.search(r"g/f = [\d.]+ \(target >= 0\.9\)", out), out
    assert re.search(r"d p50 = [\d.]+ ms \(target <= 30 ms\)", out), out
