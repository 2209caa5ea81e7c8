"""ffmpeg: one process per track decodes the source once and writes every profile of the ladder as an HLS
VOD rendition; then the output is checked and measured. No database access here (see services.py)."""

from __future__ import annotations

import ctypes
import functools
import math
import os
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import m3u8
from django.conf import settings

from apps.streaming.analysis import analysis_filter
from apps.streaming.chunks import ChunkPlan, chunk_hls_args, chunk_input_args, chunk_packet_filter
from apps.streaming.profiles import Ladder, Profile, SegmentFormat
from apps.streaming.storage import CHUNK_PLAYLIST_NAME, INIT_NAME, LIVE_PLAYLIST_NAME, PLAYLIST_NAME

STDERR_TAIL_LINES = 40
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LOSSLESS_SOURCE_CODECS = frozenset({"flac", "alac", "pcm", "wavpack", "ape", "tta"})


def sources_lossless(codecs: Sequence[str]) -> bool:
    """Every file of the source in a lossless codec (an empty source is not)."""
    return bool(codecs) and all(codec in LOSSLESS_SOURCE_CODECS for codec in codecs)


def concat_list_write(sources: Sequence[Path], folder: Path) -> Path | None:
    """For a multi-file source, the concat demuxer's list in `folder` (ffmpeg_command's `concat_list`)."""
    if len(sources) < 2:
        return None
    path = folder / "sources.ffconcat"
    path.write_text(concat_list_text(sources))
    return path


class TranscodeFailed(Exception):
    """ffmpeg could not produce the renditions; the message ends with the tail of its output."""


@dataclass(frozen=True)
class Measured:
    """What a rendition really is, from its playlist and files (the BANDWIDTH of the master playlist)."""

    profile: str
    size_bytes: int
    peak_bitrate_bps: int
    average_bitrate_bps: int
    segment_count: int
    duration_ms: int


def aac_sample_rate(source_rate_hz: int | None) -> int:
    """AAC-LC at 44.1 or 48 kHz: keep the source's rate family, so the common cases are not resampled."""
    return 44100 if source_rate_hz and 44100 % source_rate_hz == 0 or source_rate_hz in (88200, 176400) else 48000


def ffmpeg_command(
    *,
    sources: Sequence[Path],
    concat_list: Path | None,
    folder: Path,
    ladder: Ladder,
    source_rate_hz: int | None,
    lossy_source: bool,
    growing: bool = False,
    analysis_path: Path | None = None,
    chunk: tuple[ChunkPlan, int] | None = None,
    playlist_folder: Path | None = None,
) -> list[str]:
    """The one ffmpeg run: decode once, `asplit` to every encoded profile, one HLS muxer per profile; a
    copied profile takes the source's audio packets as they are (no decode at all when it is the only one).
    With `analysis_path`, one more branch of the same decode measures loudness into that file
    (apps.streaming.analysis); a copy-only ladder then decodes for it alone (no encode).

    `chunk` (plan, index): one chunk of a chunked rendition (apps.streaming.chunks), its segments written into
    `folder` as they are made, its own playlist and init segment into `playlist_folder`."""
    command = [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"]
    command += ["-progress", "pipe:1", "-y"]
    if chunk is not None:
        # Progress lines are when the caller lists new segments: every 0.05 s, not 0.5 s, off the first audio.
        command += ["-stats_period", "0.05"]
        command += chunk_input_args(*chunk)
    if settings.TRANSCODE_THREADS:
        command += ["-threads", str(settings.TRANSCODE_THREADS)]
    if concat_list is not None:
        # A multi-file book: the concat demuxer reads the files as one continuous stream.
        command += ["-f", "concat", "-safe", "0", "-i", str(concat_list)]
    else:
        command += ["-i", str(sources[0])]
    outputs = sum(1 for p in ladder.profiles if not p.copy)
    if outputs and analysis_path is not None:
        split = f"[0:a:0]asplit={outputs + 1}" + "".join(f"[o{i}]" for i in range(outputs)) + "[analysis]"
        analysis = analysis_filter(source_label="analysis", metadata_path=str(analysis_path))
        command += ["-filter_complex", f"{split};{analysis}"]
    elif outputs:
        split = f"[0:a:0]asplit={outputs}" + "".join(f"[o{i}]" for i in range(outputs))
        command += ["-filter_complex", split if outputs > 1 else "[0:a:0]anull[o0]"]
    elif analysis_path is not None:  # copies only: decoded for the analysis alone, into a null output
        analysis = analysis_filter(source_label="0:a:0", metadata_path=str(analysis_path), output_label="analysis")
        command += ["-filter_complex", analysis]
    encoded = 0
    for profile in ladder.profiles:
        if profile.copy:
            source = "0:a:0"
        else:
            source, encoded = f"[o{encoded}]", encoded + 1
        command += ["-map", source, "-map_metadata", "-1", "-map_chapters", "-1"]
        command += _encoder_args(profile, source_rate_hz=source_rate_hz, lossy_source=lossy_source)
        if chunk is not None and playlist_folder is not None:
            command += ["-bsf:a", chunk_packet_filter(*chunk), "-fflags", "+bitexact"]
            command += _hls_chunk_args(ladder, folder / profile.name, playlist_folder / profile.name, chunk)
        else:
            command += _hls_args(ladder, folder / profile.name, growing=growing)
    if not outputs and analysis_path is not None:
        command += ["-map", "[analysis]", "-f", "null", "-"]
    return command


def _encoder_args(profile: Profile, *, source_rate_hz: int | None, lossy_source: bool) -> list[str]:
    if profile.copy:
        return ["-c:a", "copy"]
    if profile.lossless:
        # 16 bit is all a decoded lossy source holds; lossless sources keep their depth (up to 24 bit).
        return ["-c:a", "flac", "-compression_level", "5"] + (["-sample_fmt", "s16"] if lossy_source else [])
    return ["-c:a", "aac", "-b:a", f"{profile.bitrate_kbps}k", "-ac", "2", "-ar", str(aac_sample_rate(source_rate_hz))]


def _hls_args(ladder: Ladder, folder: Path, *, growing: bool) -> list[str]:
    """A VOD playlist written at the end; or, `growing`, an EVENT playlist rewritten (temp name + rename, as
    ffmpeg does for every non-VOD playlist) after each segment, which is itself written under a temp name and
    renamed when whole (`temp_file`): readers only ever see whole segments, and a playlist listing them."""
    playlist_type = "event" if growing else "vod"
    args = ["-f", "hls", "-hls_time", str(ladder.segment_seconds), "-hls_playlist_type", playlist_type]
    args += ["-hls_list_size", "0", "-hls_segment_type", ladder.segment_format]
    if growing:
        args += ["-hls_flags", "temp_file"]
    if ladder.segment_format == SegmentFormat.FMP4:
        args += ["-hls_fmp4_init_filename", INIT_NAME]
    args += ["-hls_segment_filename", str(folder / f"seg%05d.{ladder.segment_extension}")]
    return [*args, str(folder / (LIVE_PLAYLIST_NAME if growing else PLAYLIST_NAME))]


def _hls_chunk_args(ladder: Ladder, folder: Path, playlist_folder: Path, chunk: tuple[ChunkPlan, int]) -> list[str]:
    """A chunk's segments straight into the rendition's folder, each renamed into place when whole; its
    own EVENT playlist and init segment (the same bytes for every chunk: bitexact) beside, in its work folder."""
    args = ["-f", "hls", *chunk_hls_args(*chunk), "-hls_playlist_type", "event", "-hls_list_size", "0"]
    args += ["-hls_segment_type", "fmp4", "-hls_flags", "temp_file", "-hls_fmp4_init_filename", INIT_NAME]
    args += ["-hls_segment_filename", str(folder / f"seg%05d.{ladder.segment_extension}")]
    return [*args, str(playlist_folder / CHUNK_PLAYLIST_NAME)]


def concat_list_text(sources: Sequence[Path]) -> str:
    """The concat demuxer's script; quotes in names are escaped the way its parser expects."""
    lines = ["ffconcat version 1.0"]
    for source in sources:
        escaped = str(source).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    return "\n".join(lines) + "\n"


def ffmpeg_run(
    command: list[str],
    *,
    duration_ms: int,
    progress: Callable[[float], None] | None = None,
    timeout_s: float | None = None,
    background: bool = False,
) -> float:
    """Run ffmpeg, report progress (0..1) from its `-progress` output; return the wall time in seconds.
    `background` (bulk work nobody is waiting for): at TRANSCODE_BULK_NICE.

    stderr goes to a temp file (never a pipe nobody reads) and its tail becomes the error on failure.
    """
    started = time.monotonic()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(_child_setup, nice=settings.TRANSCODE_BULK_NICE if background else 0),
        )
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                if progress is not None and raw.startswith(b"out_time_us=") and duration_ms > 0:
                    value = raw.split(b"=", 1)[1].strip()
                    if value.isdigit():
                        progress(min(1.0, int(value) / 1000 / duration_ms))
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    raise TranscodeFailed(f"ffmpeg took longer than {timeout_s:.0f} s")
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if returncode != 0:
            stderr.seek(0)
            tail = deque(stderr.read().decode("utf-8", errors="replace").splitlines(), maxlen=STDERR_TAIL_LINES)
            raise TranscodeFailed(f"ffmpeg exited with {returncode}:\n" + "\n".join(tail))
    return time.monotonic() - started


def _child_setup(*, nice: int) -> None:
    """In the child, before exec: the kernel kills ffmpeg if the worker process dies (SIGKILL, OOM), so no
    orphan keeps writing into a temp folder that the redelivered task is about to clean; and a bulk run is
    niced under the interactive ones."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if nice:
        os.nice(nice)


def playlist_finish(path: Path) -> None:
    """Add EXT-X-INDEPENDENT-SEGMENTS (every audio segment starts with a sync sample; ffmpeg's hls muxer
    does not write the tag for audio-only output) and check what RFC 8216 demands of a VOD playlist."""
    text = path.read_text()
    if "#EXT-X-INDEPENDENT-SEGMENTS" not in text:
        text = text.replace("#EXTM3U\n", "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n", 1)
    playlist = m3u8.loads(text)
    if not playlist.is_endlist or (playlist.playlist_type or "").lower() != "vod" or not playlist.segments:
        raise TranscodeFailed(f"{path}: not a complete VOD playlist")
    longest = max(round(segment.duration) for segment in playlist.segments)
    if playlist.target_duration is None or playlist.target_duration < longest:
        # RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer must be <= EXT-X-TARGETDURATION.
        text = text.replace(f"#EXT-X-TARGETDURATION:{playlist.target_duration}", f"#EXT-X-TARGETDURATION:{longest}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def playlist_from_live(folder: Path) -> None:
    """A growing rendition is complete: its VOD index.m3u8 (the one a ready rendition is served by) from the
    finished live playlist, which stays as it is for the players still reading it."""
    text = (folder / LIVE_PLAYLIST_NAME).read_text()
    if "#EXT-X-ENDLIST" not in text:
        raise TranscodeFailed(f"{folder / LIVE_PLAYLIST_NAME}: the run ended without EXT-X-ENDLIST")
    tmp = folder / f"{PLAYLIST_NAME}.tmp"
    tmp.write_text(text.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD", 1))
    os.replace(tmp, folder / PLAYLIST_NAME)


def rendition_measure(folder: Path, profile: str) -> Measured:
    playlist = m3u8.load(str(folder / PLAYLIST_NAME))
    sizes: list[int] = []
    durations: list[float] = []
    for segment in playlist.segments:
        sizes.append((folder / segment.uri).stat().st_size)
        durations.append(float(segment.duration))
    init_bytes = sum((folder / m.uri).stat().st_size for m in playlist.segment_map or [] if m.uri)
    total_s = sum(durations)
    total_bytes = sum(sizes) + init_bytes
    return Measured(
        profile=profile,
        size_bytes=total_bytes,
        peak_bitrate_bps=peak_bitrate_bps(sizes, durations, target_s=float(playlist.target_duration or 1)),
        # Media segments only, as RFC 8216 defines it (the init section is fetched once, not per second).
        average_bitrate_bps=math.ceil(sum(sizes) * 8 / total_s) if total_s else 0,
        segment_count=len(sizes),
        duration_ms=round(total_s * 1000),
    )


def peak_bitrate_bps(sizes: Sequence[int], durations: Sequence[float], *, target_s: float) -> int:
    """RFC 8216 4.3.4.2: the largest bit rate of any contiguous set of segments whose total duration is
    between 0.5 and 1.5 times the target duration (a lone short last segment does not count on its own)."""
    peak = 0.0
    for start in range(len(sizes)):
        total_bytes, total_s = 0, 0.0
        for end in range(start, len(sizes)):
            total_bytes += sizes[end]
            total_s += durations[end]
            if total_s > 1.5 * target_s:
                break
            if total_s >= 0.5 * target_s:
                peak = max(peak, total_bytes * 8 / total_s)
    if not peak and sizes:  # a track shorter than half a segment
        peak = sum(sizes) * 8 / max(sum(durations), 0.001)
    return math.ceil(peak - 1e-6)  # float noise must not add a bit/s
