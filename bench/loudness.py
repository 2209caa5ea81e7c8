"""Loudness analysis benchmark (issue 21): the transcode's ffmpeg run with the analysis branch against the same
run without it, in the same process, interleaved, best of BENCH_RUNS (3).

    make bench-loudness            # a 10-minute generated stereo MP3 (BENCH_SECONDS=600)

(a) the bare ffmpeg command of the full ladder (aac-64/128/256 from one decode): the ceiling;
(b) the same command with the analysis branch (apps.streaming.analysis), plus parsing its output;
(c) a copy-only ladder (aac-copy of a single-file AAC) without, and (d) with the analysis: the cheapest pass,
    where the analysis pays for a decode of its own.
Prints realtime factors and b/a (target <= 1.10); d/c is shown, not targeted (nothing else decodes there).
No database: ffmpeg_command and the parser are called as the transcode service calls them.
"""

from __future__ import annotations

import os
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

from django.conf import settings  # noqa: E402

from apps.streaming.analysis import parse_metadata  # noqa: E402
from apps.streaming.profiles import AAC_COPY, DEFAULT_PROFILES, PROFILES, Ladder, SegmentFormat  # noqa: E402
from apps.streaming.transcoder import ffmpeg_command, ffmpeg_run  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "600"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TARGET = 1.10


def generate(path: Path, codec: list[str]) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = (
        f"sine=frequency=220:duration={SECONDS}:sample_rate=44100[a];"
        f"sine=frequency=331:duration={SECONDS}:sample_rate=44100[b];"
        f"anoisesrc=color=pink:amplitude=0.05:duration={SECONDS}:sample_rate=44100[c];"
        "[a][b][c]amix=inputs=3,pan=stereo|c0=c0|c1=c0[out]"
    )
    tmp = path.with_name("part-" + path.name)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]"]
        + [*codec, str(tmp)],
        check=True,
    )
    tmp.rename(path)


def run(source: Path, ladder: Ladder, work: Path, *, analysis: bool) -> float:
    shutil.rmtree(work, ignore_errors=True)
    for profile in ladder.profiles:
        (work / profile.name).mkdir(parents=True)
    analysis_path = work / "analysis.txt" if analysis else None
    command = ffmpeg_command(
        sources=[source],
        concat_list=None,
        folder=work,
        ladder=ladder,
        source_rate_hz=44100,
        lossy_source=True,
        analysis_path=analysis_path,
    )
    started = time.perf_counter()
    ffmpeg_run(command, duration_ms=SECONDS * 1000)
    if analysis_path is not None:
        with analysis_path.open() as lines:
            measured = parse_metadata(lines, find_silences=True)
        assert measured.duration_ms >= (SECONDS - 1) * 1000, measured.duration_ms
    return time.perf_counter() - started


def main() -> int:
    folder = Path(settings.DATA_DIR) / "bench" / f"loudness-{SECONDS}s"
    mp3 = folder / "track.mp3"
    m4a = folder / "book.m4a"
    generate(mp3, ["-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"])
    generate(m4a, ["-c:a", "aac", "-b:a", "64k", "-f", "mp4"])
    full = Ladder(tuple(PROFILES[name] for name in DEFAULT_PROFILES), SegmentFormat.FMP4, 6)
    copy = Ladder((PROFILES[AAC_COPY],), SegmentFormat.FMP4, 6)
    work = Path(tempfile.mkdtemp(prefix="bench-loudness-"))
    best = {key: float("inf") for key in "abcd"}
    try:
        run(mp3, full, work / "warm", analysis=True)  # page cache and binary warm for all alike
        for _ in range(RUNS):
            best["a"] = min(best["a"], run(mp3, full, work / "a", analysis=False))
            best["b"] = min(best["b"], run(mp3, full, work / "b", analysis=True))
            best["c"] = min(best["c"], run(m4a, copy, work / "c", analysis=False))
            best["d"] = min(best["d"], run(m4a, copy, work / "d", analysis=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"loudness benchmark: {SECONDS} s stereo, best of {RUNS} interleaved runs")
    for key, text in (
        ("a", "full ladder (aac-64/128/256), no analysis"),
        ("b", "full ladder + analysis branch + parse"),
        ("c", "aac-copy only, no analysis"),
        ("d", "aac-copy + analysis (its own decode)"),
    ):
        print(f"  ({key}) {text:44s} {best[key]:7.2f} s  {SECONDS / best[key]:6.0f}x realtime")
    ratio = best["b"] / best["a"]
    print(f"  b/a = {ratio:.3f}  (target <= {TARGET})")
    print(
        f"  d/c = {best['d'] / best['c']:.1f}  (a copy decodes nothing; the analysis adds a decode: "
        f"{best['d'] - best['c']:.2f} s for {SECONDS} s of audio)"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
