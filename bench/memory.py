"""Memory of a web worker while it streams an original itself (direct play without nginx's X-Accel-Redirect):
a 1 GiB file downloaded whole (a FileResponse: gunicorn sends it with sendfile), whole again as a range
(`bytes=0-`: the app's own range generator, 1 MiB chunks) and a 64 MiB range of it, through gunicorn with
deploy/gunicorn.conf.py and one worker process.

    make bench-memory           # BENCH_MEMORY_MIB=1024

The ceiling is the same worker's resident memory once warm (it has answered API requests) and idle.
Targets (DESIGN.md): constant memory while streaming a 1 GB file (what the worker gains is the same for
1 GiB as for 64 MiB) and a web worker under ~120 MB RSS. RSS is read from /proc every 5 ms while the
client downloads, and the worker's own high-water mark (VmHWM, reset before each download) is kept too,
so a short spike between two samples is not missed.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from apps.accounts.services import api_token_issue  # noqa: E402
from apps.library.models import Library  # noqa: E402
from apps.library.services import library_scan  # noqa: E402
from bench.load import free_port  # noqa: E402
from bench.rendition import start_gunicorn  # noqa: E402
from tests.e2e.nginx import stop  # noqa: E402

SIZE_MIB = int(os.environ.get("BENCH_MEMORY_MIB", "1024"))
RANGE_MIB = min(64, SIZE_MIB // 4)
WAV_BYTES_PER_S = 44_100 * 2 * 2  # 16-bit stereo
MIB = 1024 * 1024
TARGET_RSS_MB = 120


def write_wav(path: Path, size_bytes: int) -> None:
    """A sine tone of about `size_bytes` as 16-bit stereo WAV (mutagen reads it; ffmpeg writes ~1 GiB/10 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency=220:sample_rate=44100:duration={size_bytes / WAV_BYTES_PER_S:.3f}", "-ac", "2",
         "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip


def worker_pid(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    assert len(children) == 1, f"expected one gunicorn worker, found {children}"
    return int(children[0])


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_high_water_mark(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0, needs the right to ptrace the process)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Download:
    label: str
    bytes_read: int
    seconds: float
    peak_rss_kib: int

    def describe(self, idle_kib: int) -> str:
        return (
            f"{self.label:34s} {self.bytes_read / MIB:7.0f} MiB  {self.bytes_read / MIB / self.seconds:6.0f} MiB/s"
            f"  peak RSS {self.peak_rss_kib / 1024:6.1f} MiB  (+{(self.peak_rss_kib - idle_kib) / 1024:5.1f} MiB)"
        )


def download(port: int, pid: int, token: str, label: str, path: str, headers: dict[str, str]) -> Download:
    samples = [status_kib(pid, "VmRSS")]
    exact = reset_high_water_mark(pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(status_kib(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", **headers})
        response = conn.getresponse()
        assert response.status in (200, 206), (label, response.status, response.read(300))
        bytes_read = 0
        while chunk := response.read(MIB):
            bytes_read += len(chunk)
        assert bytes_read == int(response.headers["Content-Length"]), (label, bytes_read)
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        conn.close()
    peak = max(samples)
    if exact:
        peak = max(peak, status_kib(pid, "VmHWM"))
    return Download(label, bytes_read, seconds, peak)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    gunicorn = None
    try:
        print(f"writing a {SIZE_MIB} MiB WAV file ...", flush=True)
        write_wav(work / "music" / "long.wav", SIZE_MIB * MIB)
        music = Library.objects.create(name="music", root_paths=[str(work / "music")])
        library_scan(library=music)
        track = music.tracks.get()
        user = get_user_model().objects.create_superuser("bench", password="bench correct horse staple")
        _token, token = api_token_issue(user=user, name="bench")

        port = free_port()
        # One worker, so the process measured is the one that serves; no X-Accel-Redirect (the default).
        os.environ["WEB_CONCURRENCY"] = "1"
        gunicorn = start_gunicorn(port, "--access-logfile", "/dev/null")
        pid = worker_pid(gunicorn.pid)
        cold_kib = status_kib(pid, "VmRSS")  # has answered start_gunicorn's one /healthz
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        file_path = f"/api/v1/tracks/{track.pk}/file"
        for path in ("/healthz", "/api/v1/tracks", f"/api/v1/tracks/{track.pk}"):
            for _ in range(20):  # warm: every view this run touches has been imported and run
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                assert response.status == 200, (path, response.status)
        conn.close()
        for headers in ({"Range": "bytes=0-1048575"}, {"Range": "bytes=-1048576"}):
            download(port, pid, token, "warm-up", file_path, headers)
        time.sleep(0.5)
        idle_kib = status_kib(pid, "VmRSS")
        middle = (SIZE_MIB // 2) * MIB
        partial = {"Range": f"bytes={middle}-{middle + RANGE_MIB * MIB - 1}"}
        runs = [
            download(port, pid, token, f"{RANGE_MIB} MiB range (generator)", file_path, partial),
            download(port, pid, token, "whole file as bytes=0- (generator)", file_path, {"Range": "bytes=0-"}),
            download(port, pid, token, "whole file (sendfile)", file_path, {}),
        ]
        idle_after_kib = status_kib(pid, "VmRSS")
    finally:
        stop(gunicorn)
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)

    print("memory benchmark: gunicorn deploy/gunicorn.conf.py, 1 worker, the worker streams the bytes itself")
    print(f"  worker after its first request      RSS {cold_kib / 1024:6.1f} MiB")
    print(f"  (a) worker warm and idle (ceiling)  RSS {idle_kib / 1024:6.1f} MiB")
    for run in runs:
        print("  " + run.describe(idle_kib))
    served_gib = sum(r.bytes_read for r in runs) / MIB / 1024
    print(f"  worker idle again after {served_gib:.1f} GiB: RSS {idle_after_kib / 1024:6.1f} MiB")
    peak = max(r.peak_rss_kib for r in runs)
    growth_kib = runs[1].peak_rss_kib - runs[0].peak_rss_kib
    print(f"  peak / idle = {peak / idle_kib:.2f}; {SIZE_MIB} MiB vs {RANGE_MIB} MiB through the generator: "
          f"{growth_kib / 1024:+.1f} MiB (constant memory: about 0)")  # fmt: skip
    print(f"  peak RSS {peak / 1000:.0f} MB (target: under ~{TARGET_RSS_MB} MB)")
    return 0 if peak / 1000 < TARGET_RSS_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
