"""Time to first audio on a track never transcoded (issue 18), through nginx, with the Procfile's workers.

    make bench-cold-start       # BENCH_COLD_ROUNDS=5 tracks per scenario, BENCH_COLD_MINUTES=30

Each round is a player meeting a 30-minute FLAC that was never transcoded: the stream decision (which queues
the interactive, growing transcode), the master playlist polled every 20 ms while it answers 202, the first
variant's live playlist, its init segment and first segment, on one keep-alive TLS connection through the
shipped nginx site (gunicorn with deploy/gunicorn.conf.py behind it). Scenarios, each on fresh tracks:
(a) the same five requests on a ready track (the ceiling: what pre-transcoding gives); (b) cold, workers
idle; (c) cold while the bulk worker is busy with a backlog of pre-transcodes. Target: p50 <= 400 ms for
(b) and (c); (d) cold, a listener resuming at 25:00 (the chunk holding it is made first; the segment
there is the one fetched), target p50 <= 1 s. Each round starts on a free interactive slot (the previous
round's chunked run is cut short after its chunk under way: ready_wait).
The tracks are hard links of one generated file (distinct paths: distinct tracks and keys).
The database is a throw-away one (created and dropped here), never the server's.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402
from celery import current_app  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from apps.accounts.services import api_token_issue  # noqa: E402
from apps.library.models import Library, Track  # noqa: E402
from apps.library.services import library_scan  # noqa: E402
from apps.streaming import services  # noqa: E402
from apps.streaming.models import Rendition, RenditionStatus  # noqa: E402
from apps.streaming.selectors import track_rendition_key  # noqa: E402
from apps.streaming.services import rendition_transcode, renditions_request  # noqa: E402
from apps.streaming.services.renditions import track_chunks_busy  # noqa: E402
from bench.load import database_url, free_port  # noqa: E402
from bench.rendition import start_gunicorn  # noqa: E402
from revenge.launcher import procfile_entries  # noqa: E402
from tests.e2e.nginx import NginxSite, stop  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_COLD_ROUNDS", "5"))
MINUTES = int(os.environ.get("BENCH_COLD_MINUTES", "30"))
POLL_S = 0.02
TARGET_MS = 400
DEEP_MS = 25 * 60_000  # (d): where a listener resumes
DEEP_TARGET_MS = 1000


def generate(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = MINUTES * 60
    graph = (
        f"sine=frequency=220:duration={seconds}:sample_rate=44100[a];"
        f"anoisesrc=color=pink:amplitude=0.05:duration={seconds}:sample_rate=44100[b];"
        "[a][b]amix=inputs=2,pan=stereo|c0=c0|c1=c0[out]"
    )
    tmp = path.with_suffix(".part")
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]"]
        + ["-c:a", "flac", "-f", "flac", str(tmp)],
        check=True,
    )
    tmp.rename(path)


def start_worker(name: str, log: Path) -> subprocess.Popen:
    """The Procfile's line for `name`, as `make run` runs it (a shell expands its ${...})."""
    command = dict(procfile_entries(BASE_DIR / "Procfile"))[name].replace("--loglevel=INFO", "--loglevel=WARNING")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
        "CELERY_WORKER_CONCURRENCY": "1",
        "TRANSCODE_AFTER_SCAN": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the venv's celery
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen(
        ["/bin/sh", "-c", f"exec {command}"], cwd=BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


class Player:
    """One keep-alive TLS connection through nginx, as a player holds it."""

    def __init__(self, port: int, token: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.polls = 0

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        return response.status, response.read()

    def connected(self) -> None:
        """Untimed: the connection alive (nginx closes an idle keep-alive one after 75 s), as a player that
        is browsing has it when it presses play."""
        try:
            self.get("/healthz")
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.get("/healthz")

    def ok(self, path: str, headers: dict | None = None) -> bytes:
        status, body = self.get(path, headers)
        assert status == 200, (path, status, body[:300])
        return body

    def first_audio_ms(self, track_id: int, position_ms: int = 0) -> float:
        """Stream decision to the first segment playable at `position_ms` (the one holding it)."""
        self.connected()
        started = time.perf_counter()
        query = "codecs=aac" + (f"&position_ms={position_ms}" if position_ms else "")
        url = json.loads(self.ok(f"/api/v1/tracks/{track_id}/stream?{query}", self.auth))["url"]
        while True:
            status, master = self.get(url)
            if status == 200:
                break
            assert status == 202, (status, master[:300])
            self.polls += 1
            time.sleep(POLL_S)
            assert time.perf_counter() - started < 60, "no master playlist within 60 s"
        variant = next(line for line in master.decode().splitlines() if line and not line.startswith("#"))
        media = self.ok(variant).decode()
        first = segment_at(media, position_ms / 1000)
        folder = variant.rsplit("/", 1)[0]
        self.ok(f"{folder}/init.mp4")
        segment = self.ok(f"{folder}/{first}")
        assert len(segment) > 1000
        return (time.perf_counter() - started) * 1000


def segment_at(media_playlist: str, position_s: float) -> str:
    """The URI of the segment holding the position, as a player seeking there picks it (never a gap)."""
    elapsed, duration, gap = 0.0, 0.0, False
    for line in media_playlist.splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line == "#EXT-X-GAP":
            gap = True
        elif line and not line.startswith("#"):
            if elapsed + duration > position_s:
                assert not gap, f"the segment at {position_s} s is not made yet: {line}"
                return line
            elapsed, gap = elapsed + duration, False
    raise AssertionError(f"no segment at {position_s} s listed")


def ready_wait(track) -> None:
    """The interactive worker (one process, as in the Procfile) is free again: a round measures a cold start
    on a free interactive slot, not one queued behind the previous round's run. A chunked run (the 30-minute
    FLAC is six chunks) is cut short: the track is marked missing, so its next chunks end at once (the
    chain stops) and only the chunk under way is waited for, not the whole track (minutes on a loaded
    machine); a run in one piece is waited for to its end."""
    deadline = time.monotonic() + 900
    if track_rendition_key(track=track)[0].chunk_seconds:
        Track.objects.filter(pk=track.pk).update(missing=True)
        time.sleep(1)  # the chunk under way has taken its lock (the second one sent may still be queued)
        while track_chunks_busy(track.pk):
            assert time.monotonic() < deadline, f"track {track.pk}: a chunk still running after 15 minutes"
            time.sleep(0.5)
        time.sleep(1)  # the queued one taken and dropped
        return
    while Rendition.objects.filter(track=track).exclude(status=RenditionStatus.READY).exists():
        assert time.monotonic() < deadline, f"track {track.pk} not ready within 15 minutes"
        time.sleep(0.5)


def describe(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.1f} ms  min {min(values):7.1f}  max {max(values):7.1f}  (n={len(values)})"


def queues_purge() -> None:
    """The Procfile workers take the real transcode queues of this Redis: what an earlier run left there
    (a bulk backlog cut short at its end) is dropped, or its chunks would go first and skew (c)."""
    with current_app.connection_for_write() as connection_:
        for queue in (services.INTERACTIVE_QUEUE, services.BULK_QUEUE):
            connection_.default_channel.queue_purge(queue)


def main() -> int:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        print("bench/coldstart.py needs nginx (apt-get install nginx)")
        return 2
    cache = Path(os.environ.get("BENCH_CACHE", Path(tempfile.gettempdir()) / "revenge-bench"))
    source = cache / f"cold-{MINUTES}min.flac"
    generate(source)
    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    media = work / "media"
    media.mkdir()
    names = ["ready"] + [f"cold-{n:02d}" for n in range(3 * ROUNDS)] + [f"bulk-{n}" for n in range(3)]
    for name in names:
        os.link(source, media / f"{name}.flac")
    settings.RENDITIONS_ROOT = work / "renditions"
    settings.TRANSCODE_AFTER_SCAN = False
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    processes: list[subprocess.Popen] = []
    nginx = None
    try:
        library = Library.objects.create(name="bench", root_paths=[str(media)])
        library_scan(library=library)
        tracks = {t.files.get().path.rsplit("/", 1)[-1].removesuffix(".flac"): t for t in library.tracks.all()}
        assert rendition_transcode(track_id=tracks["ready"].pk).outcome == "published"
        app_port = free_port()
        processes.append(start_gunicorn(app_port, "--access-logfile", "/dev/null"))
        site = NginxSite(
            folder=work / "nginx",
            http_port=free_port(),
            https_port=free_port(),
            upstream=f"127.0.0.1:{app_port}",
            renditions_root=settings.RENDITIONS_ROOT,
            static_root=work / "static",
            hls_secret=settings.HLS_SIGNING_SECRET,
        )
        site.render()
        snippet = site.folder / "snippets" / "revenge-locations.conf"
        snippet.write_text(snippet.read_text().replace("limit_req zone=revenge_api burst=60 nodelay;", ""))
        nginx = site.start()
        queues_purge()
        processes.append(start_worker("interactive", work / "interactive.log"))
        processes.append(start_worker("worker", work / "worker.log"))
        time.sleep(5)  # both workers up and listening (a cold start of the worker is not the measure)
        user = get_user_model().objects.create_superuser("bench", password="bench correct horse staple")
        _token, key = api_token_issue(user=user, name="bench")
        player = Player(site.https_port, key)
        for _ in range(10):
            player.first_audio_ms(tracks["ready"].pk)  # warm-up: TLS session, keep-alive, caches
        ready_ms = [player.first_audio_ms(tracks["ready"].pk) for _ in range(3 * ROUNDS)]
        cold = [tracks[f"cold-{n:02d}"] for n in range(3 * ROUNDS)]
        print(f"  (a) ready track (ceiling)                 {describe(ready_ms)}", flush=True)
        idle_ms = []
        for track in cold[:ROUNDS]:
            idle_ms.append(player.first_audio_ms(track.pk))
            print(f"      cold, idle: {idle_ms[-1]:.0f} ms", flush=True)
            ready_wait(track)
        # (c): a backlog of bulk pre-transcodes, the bulk worker busy with the first of them.
        renditions_request(track_ids=[tracks[f"bulk-{n}"].pk for n in range(3)])
        deadline = time.monotonic() + 60
        while not Rendition.objects.filter(status=RenditionStatus.RUNNING, track__in=[tracks["bulk-0"]]).exists():
            assert time.monotonic() < deadline, "the bulk worker did not start"
            time.sleep(0.1)
        busy_ms = []
        for track in cold[ROUNDS : 2 * ROUNDS]:
            busy_ms.append(player.first_audio_ms(track.pk))
            print(f"      cold, bulk busy: {busy_ms[-1]:.0f} ms", flush=True)
            ready_wait(track)
        bulk_running = Rendition.objects.filter(
            status=RenditionStatus.RUNNING, track__in=[tracks[f"bulk-{n}"] for n in range(3)]
        ).exists()
        # (d): a listener resuming at 25:00 (a chunked transcode starts with the chunk holding it).
        deep_ms = []
        for track in cold[2 * ROUNDS :]:
            deep_ms.append(player.first_audio_ms(track.pk, position_ms=DEEP_MS))
            print(f"      cold, at {DEEP_MS // 60000}:00: {deep_ms[-1]:.0f} ms", flush=True)
            ready_wait(track)
        player.conn.close()
    except Exception:
        for log in ("interactive.log", "worker.log"):
            print(f"--- {log}:\n" + (work / log).read_text()[-3000:])
        print([(r.track_id, r.profile, r.status, r.error[-300:]) for r in Rendition.objects.all()][-12:])
        raise
    finally:
        stop(nginx)
        for process in processes:
            stop(process)
        queues_purge()
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"cold start benchmark: {MINUTES}-minute FLAC, default ladder, through nginx (1 worker) and gunicorn; "
        f"master polled every {POLL_S * 1000:.0f} ms ({player.polls} polls in all)"
    )
    print(f"  (a) ready track (ceiling)                 {describe(ready_ms)}")
    print(f"  (b) never transcoded, workers idle         {describe(idle_ms)}")
    print(f"  (c) never transcoded, bulk worker busy     {describe(busy_ms)}  (bulk still running: {bulk_running})")
    idle_p50, busy_p50 = statistics.median(idle_ms), statistics.median(busy_ms)
    deep_p50 = statistics.median(deep_ms)
    print(f"  (d) never transcoded, at {DEEP_MS // 60000}:00          {describe(deep_ms)}")
    print(f"  b/a = {idle_p50 / statistics.median(ready_ms):.1f}, c/a = {busy_p50 / statistics.median(ready_ms):.1f}")
    print(f"  b p50 = {idle_p50:.0f} ms, c p50 = {busy_p50:.0f} ms (target <= {TARGET_MS} ms)")
    print(f"  d p50 = {deep_p50:.0f} ms (target <= {DEEP_TARGET_MS} ms)")
    print(f"  load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0 if max(idle_p50, busy_p50) <= TARGET_MS and deep_p50 <= DEEP_TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
