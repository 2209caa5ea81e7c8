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
import sys
import tempfile
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.db import connection  # noqa: E402

from apps.streaming.storage import RenditionStorage  # noqa: E402
from bench.load import free_port, run_load  # noqa: E402
from bench.rendition import ready_track, start_gunicorn  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
ROUNDS = 4


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        track, key = ready_track(work)
        segment = f"{RenditionStorage.url_prefix(track_id=track.pk, rendition_key=key)}/aac-128/seg00001.m4s"
        port = free_port()
        server = start_gunicorn(port, "revenge.wsgi")
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
