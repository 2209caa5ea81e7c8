"""What the segment benchmarks share: a ready rendition of a generated track, and gunicorn serving it.

Import after django.setup(). The caller owns the throw-away database (create_test_db) and the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

from apps.library.models import Library, Track
from apps.library.services import library_scan
from apps.streaming.services import rendition_transcode
from bench.load import database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def ready_track(work: Path, *, seconds: int = 30) -> tuple[Track, str]:
    """A 30 s pink-noise MP3 scanned into a library and transcoded: (track, rendition key).
    RENDITIONS_ROOT is moved under `work`."""
    media = work / "media"
    media.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"anoisesrc=color=pink:duration={seconds}:sample_rate=44100", "-ac", "2", "-c:a", "libmp3lame",
         "-b:a", "192k", str(media / "track.mp3")],
        check=True,
    )  # fmt: skip
    settings.RENDITIONS_ROOT = work / "renditions"
    library = Library.objects.create(name="bench", root_paths=[str(media)])
    library_scan(library=library)
    track = library.tracks.get()
    result = rendition_transcode(track_id=track.pk)
    assert result.outcome == "published", result
    return track, result.rendition_key


def start_gunicorn(port: int, *extra_args: str) -> subprocess.Popen:
    """gunicorn with deploy/gunicorn.conf.py on the benchmark's database and renditions, once it answers."""
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
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", *extra_args], cwd=BASE_DIR, env=env
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)
