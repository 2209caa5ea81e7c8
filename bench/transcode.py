"""Transcode benchmark: the service against the bare ffmpeg command it runs, in the same run.

    make bench-transcode            # a 10-minute generated stereo track
    make bench-ladder               # a 10-hour 64 kbit/s AAC m4b: the fitted ladder against the full one

(a) the bare ffmpeg command the service runs (every profile from one decode), timed alone: the ceiling;
(b) the service end to end, as the Celery task runs it (lock, probe, ffmpeg, measure, publish, database);
(c) one ffmpeg run per profile, one after another (what a server without the shared decode would do).
Prints realtime factors (audio seconds per wall second) and the ratios b/a (target <= 1.15) and c/a.
The database is a throw-away one (created and dropped here), never the server's.

`--ladder` (make bench-ladder): a generated BENCH_BOOK_HOURS-hour (10) AAC 64 kbit/s stereo m4b transcoded by
the service with STREAMING_LADDER=full (today's aac-64/128/256 ladder: a decode and three encodes) and with
STREAMING_LADDER=fitted (the book's own AAC copied into fMP4 segments); CPU seconds (ffmpeg's, from the
children's rusage, plus this process') and bytes on disk, full/fitted (target: >= 50x less CPU, disk in
proportion: the copy is the size of the one source-bitrate rung, against three rungs).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()
logging.getLogger("celery").setLevel(logging.WARNING)

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from apps.library.models import Library  # noqa: E402
from apps.library.services import library_scan  # noqa: E402
from apps.streaming.models import Rendition  # noqa: E402
from apps.streaming.selectors import file_path, track_ladder, track_source_files  # noqa: E402
from apps.streaming.tasks import rendition_transcode_task  # noqa: E402
from apps.streaming.transcoder import concat_list_text, ffmpeg_command, ffmpeg_run  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "600"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BOOK_HOURS = float(os.environ.get("BENCH_BOOK_HOURS", "10"))
PIECE_S = 600


def generate(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two detuned tones plus pink noise: a signal the AAC encoder has to work on, unlike a pure sine.
    graph = (
        f"sine=frequency=220:duration={SECONDS}:sample_rate=44100[a];"
        f"sine=frequency=331:duration={SECONDS}:sample_rate=44100[b];"
        f"anoisesrc=color=pink:amplitude=0.05:duration={SECONDS}:sample_rate=44100[c];"
        "[a][b][c]amix=inputs=3,pan=stereo|c0=c0|c1=c0[out]"
    )
    tmp = path.with_suffix(".part.mp3")
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]"]
        + ["-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3", str(tmp)],
        check=True,
    )
    tmp.rename(path)


def bare(track, ladder, folder: Path) -> float:
    files = track_source_files(track=track)
    shutil.rmtree(folder, ignore_errors=True)
    for profile in ladder.profiles:
        (folder / profile.name).mkdir(parents=True)
    command = ffmpeg_command(
        sources=[file_path(f) for f in files],
        concat_list=None,
        folder=folder,
        ladder=ladder,
        source_rate_hz=files[0].sample_rate_hz,
        lossy_source=True,
    )
    started = time.perf_counter()
    ffmpeg_run(command, duration_ms=track.duration_ms)
    return time.perf_counter() - started


def main() -> int:
    source = Path(settings.DATA_DIR) / "bench" / f"transcode-{SECONDS}s" / "track.mp3"
    generate(source)
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-"))
    settings.RENDITIONS_ROOT = work / "renditions"
    settings.STREAMING_LADDER = "full"  # the configured ladder, as the figures in the README were measured
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        library = Library.objects.create(name="bench", root_paths=[str(source.parent)])
        library_scan(library=library)
        track = library.tracks.get()
        ladder = track_ladder(files=track_source_files(track=track))
        audio_s = track.duration_ms / 1000
        bare(track, ladder, work / "warm")  # page cache and binary warm for everyone alike
        # Interleaved rounds, best of each: this is a shared, noisy machine, and the fastest run of each is
        # the one least disturbed; interleaving exposes all three to the same background.
        a_s = b_s = c_s = float("inf")
        for _ in range(RUNS):
            a_s = min(a_s, bare(track, ladder, work / "a"))
            Rendition.objects.all().delete()
            shutil.rmtree(settings.RENDITIONS_ROOT, ignore_errors=True)
            started = time.perf_counter()
            result = rendition_transcode_task.apply(args=[track.pk]).get()
            b_s = min(b_s, time.perf_counter() - started)
            assert result["outcome"] == "published", result
            total = 0.0
            for profile in ladder.profiles:
                single = type(ladder)((profile,), ladder.segment_format, ladder.segment_seconds)
                total += bare(track, single, work / "c")
            c_s = min(c_s, total)
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)
    profiles = ", ".join(p.name for p in ladder.profiles)
    print(f"transcode benchmark: {audio_s:.0f} s stereo MP3 -> {profiles} ({ladder.segment_format}), best of {RUNS}")
    print(f"  (a) bare ffmpeg, one run, every profile  {a_s:6.2f} s  {audio_s / a_s:6.0f}x realtime")
    print(f"  (b) the service end to end (task)        {b_s:6.2f} s  {audio_s / b_s:6.0f}x realtime")
    print(f"  (c) one ffmpeg run per profile            {c_s:6.2f} s  {audio_s / c_s:6.0f}x realtime")
    print(f"  b/a = {b_s / a_s:.3f}  (target <= 1.15)")
    print(f"  c/a = {c_s / a_s:.3f}  (what decoding once saves)")
    return 0 if b_s / a_s <= 1.15 else 1


def generate_book(path: Path) -> None:
    """A BOOK_HOURS-hour 64 kbit/s AAC m4b: a 10-minute piece encoded once, then copied end to end by the
    concat demuxer (a packet copy: seconds, not the hour an encode of ten hours would take)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    piece = path.parent.parent / "piece.m4a"  # beside the library folder, not in it
    graph = (
        f"sine=frequency=180:duration={PIECE_S}:sample_rate=44100[a];"
        f"anoisesrc=color=pink:amplitude=0.08:duration={PIECE_S}:sample_rate=44100[b];"
        "[a][b]amix=inputs=2,pan=stereo|c0=c0|c1=c0[out]"
    )
    ffmpeg = [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-y"]
    subprocess.run(
        [*ffmpeg, "-filter_complex", graph, "-map", "[out]", "-c:a", "aac", "-b:a", "64k", "-f", "mp4", str(piece)],
        check=True,
    )
    listing = path.parent.parent / "pieces.ffconcat"
    listing.write_text(concat_list_text([piece] * max(1, round(BOOK_HOURS * 3600 / PIECE_S))))
    tmp = path.with_suffix(".part")
    subprocess.run(
        [*ffmpeg, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-f", "mp4", str(tmp)], check=True
    )
    tmp.rename(path)


def cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ladder_main() -> int:
    # Outside the data folder and the system ones, which a library may not overlap; kept between runs.
    cache = Path(os.environ.get("BENCH_CACHE", Path(tempfile.gettempdir()) / "revenge-bench"))
    source = cache / f"book-{BOOK_HOURS:g}h" / "library" / "book.m4b"
    generate_book(source)
    work = Path(tempfile.mkdtemp(prefix="bench-ladder-"))
    settings.RENDITIONS_ROOT = work / "renditions"
    settings.TRANSCODE_TIME_LIMIT_BASE_S = 24 * 3600
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    figures: dict[str, tuple[float, float, int, list[str]]] = {}
    try:
        library = Library.objects.create(name="bench", kind="audiobook", root_paths=[str(source.parent)])
        library_scan(library=library)
        track = library.tracks.get()
        audio_s = track.duration_ms / 1000
        file = track.files.get()
        for mode in ("fitted", "full"):
            settings.STREAMING_LADDER = mode
            Rendition.objects.all().delete()
            shutil.rmtree(settings.RENDITIONS_ROOT, ignore_errors=True)
            cpu_before, started = cpu_s(), time.perf_counter()
            result = rendition_transcode_task.apply(args=[track.pk]).get()
            wall, cpu = time.perf_counter() - started, cpu_s() - cpu_before
            assert result["outcome"] == "published", result
            rows = list(Rendition.objects.filter(rendition_key=result["key"]).order_by("profile"))
            figures[mode] = (cpu, wall, sum(r.size_bytes or 0 for r in rows), [r.profile for r in rows])
            print(
                f"  {mode:6}  {', '.join(figures[mode][3])}: CPU {cpu:8.1f} s, wall {wall:7.1f} s, "
                f"{figures[mode][2] / 1e6:7.1f} MB",
                flush=True,
            )
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)
    (fit_cpu, _, fit_bytes, _), (full_cpu, _, full_bytes, _) = figures["fitted"], figures["full"]
    print(
        f"ladder benchmark: {audio_s / 3600:.1f} h AAC {file.bitrate_kbps} kbit/s m4b ({file.size_bytes / 1e6:.0f} MB)"
    )
    print(f"  CPU full/fitted  = {full_cpu / fit_cpu:7.1f}x  (target >= 50)")
    print(f"  disk full/fitted = {full_bytes / fit_bytes:7.2f}x  (three rungs against one at the source's rate)")
    return 0 if full_cpu / fit_cpu >= 50 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ladder", action="store_true", help="the fitted ladder against the full one on a long book")
    raise SystemExit(ladder_main() if parser.parse_args().ladder else main())
