"""Segment delivery benchmark: Django's /hls/ view under gunicorn (deploy/gunicorn.conf.py) against a trivial
view (/healthz) on the same server, in the same run.

    make bench-segments             # BENCH_CLIENTS=8 BENCH_SECONDS=12

Prints req/s, MB/s and latency for (a) the trivial view (the ceiling of Django under gunicorn here) and
(b) a signed fMP4 segment of the aac-128 rendition, and the ratio b/a. Behind nginx, /hls/ never reaches
Python (see deploy/); this is the fallback path of embedded mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from apps.library.models import Library  # noqa: E402
from apps.library.services import library_scan  # noqa: E402
from apps.streaming.services import rendition_transcode  # noqa: E402
from apps.streaming.signing import hls_prefix  # noqa: E402
from bench.load import database_url, free_port, run_load  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
ROUNDS = 4


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    media = work / "media"
    media.mkdir()
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "anoisesrc=color=pink:duration=30:sample_rate=44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k",
         str(media / "track.mp3")],
        check=True,
    )  # fmt: skip
    settings.RENDITIONS_ROOT = work / "renditions"
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        library = Library.objects.create(name="bench", root_paths=[str(media)])
        library_scan(library=library)
        track = library.tracks.get()
        result = rendition_transcode(track_id=track.pk)
        assert result.outcome == "published", result
        segment = f"{hls_prefix(track_id=track.pk, rendition_key=result.rendition_key)}/aac-128/seg00001.m4s"
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
            "HLS_SIGNING_SECRET": settings.HLS_SIGNING_SECRET,
            "PORT": str(port),
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            "LOG_LEVEL": "warning",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "revenge.wsgi"], cwd=BASE_DIR, env=env
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        size = len(urllib.request.urlopen(f"http://127.0.0.1:{port}{segment}").read())
        run_load(port, lambda i: ("GET", "/healthz", None, {}), clients=CLIENTS, seconds=2)  # warm-up
        # Interleaved slices, best slice of each: both see the same background on this shared machine.
        slices = [
            (
                run_load(port, lambda i: ("GET", "/healthz", None, {}), clients=CLIENTS, seconds=SECONDS / ROUNDS),
                run_load(port, lambda i: ("GET", segment, None, {}), clients=CLIENTS, seconds=SECONDS / ROUNDS),
            )
            for _ in range(ROUNDS)
        ]
        trivial = max((t for t, _ in slices), key=lambda r: r.rps)
        segments = max((g for _, g in slices), key=lambda r: r.rps)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"segment benchmark: gunicorn (deploy/gunicorn.conf.py), {CLIENTS} clients, {SECONDS:.0f} s each "
        f"in {ROUNDS} interleaved slices (best slice shown)"
    )
    print(f"  (a) trivial view /healthz          {trivial.describe()}")
    print(f"  (b) /hls/ segment ({size // 1024} KiB, signed)  {segments.describe()}")
    print(f"  b/a = {segments.rps / trivial.rps:.2f} (requests/s against the trivial view)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
