"""Loudness, true peak and silences of a track measured by a decode of its own, for the tracks whose
renditions are not made by one ffmpeg run: a chunked rendition is encoded span by span with pre-rolls
(apps.streaming.chunks), so no run sees the whole track once, and BS.1770's gating is over the whole
programme. One analysis-only run (decode + the same `analysis_filter` branch, no encode) after the last chunk
is done measures what the one-run transcode measures in its decode; its cost is that decode, a few percent of
the encodes (a 2-hour MP3: ~20 s of CPU against ~150 s for the chunks' encodes, on this machine class)."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

from celery import current_app
from django.conf import settings

from apps.library.models import LibraryKind, Track
from apps.library.services.loudness import track_loudness_current, track_loudness_record
from apps.streaming import services as package
from apps.streaming.analysis import parse_metadata
from apps.streaming.profiles import Ladder, SegmentFormat
from apps.streaming.selectors import track_source_files
from apps.streaming.services.renditions import transcode_time_limit_s
from apps.streaming.services.sources import error_text, sources_checked
from apps.streaming.storage import RenditionStorage
from apps.streaming.transcoder import TranscodeFailed, concat_list_write, ffmpeg_command, ffmpeg_run

logger = logging.getLogger(__name__)

LOUDNESS_TASK = "apps.streaming.tasks.track_loudness_measure_task"


def track_loudness_measure_send(*, track_id: int, duration_ms: int) -> None:
    """Queue the measurement on the bulk transcode queue (sent by the chunk that completes a rendition, after
    its commit). A broker that is away loses it: the next transcode of this audio measures it."""
    soft = transcode_time_limit_s(duration_ms)
    try:
        current_app.send_task(
            LOUDNESS_TASK, args=[track_id], queue=package.BULK_QUEUE, soft_time_limit=soft, time_limit=soft + 60
        )
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError: the broker is away
        logger.warning("loudness of track %s not queued, broker unreachable (%s)", track_id, exc)


def track_loudness_measure(*, track_id: int) -> bool:
    """Measure the track's loudness (and silences, for spoken word) by decoding its files once, unless the
    audio it has now was measured already. True when a measurement was stored. Never raises for what ffmpeg
    or the files do: a failure is logged and the next transcode of this audio measures it."""
    track = Track.objects.filter(pk=track_id, missing=False).select_related("library").first()
    files = track_source_files(track=track) if track is not None else []
    if track is None or not files or track_loudness_current(track=track):
        return False
    sources = sources_checked(files)
    if sources is None:
        return False  # changed or refused: the next scan hands the track back
    work = RenditionStorage.from_settings().tmp_root / f"{track.pk}-analysis-{uuid.uuid4().hex[:8]}"
    try:
        work.mkdir(parents=True)
        # A ladder of no rendition: ffmpeg_command's analysis-only run (decode, the branch, a null output).
        nothing = Ladder(profiles=(), segment_format=SegmentFormat.FMP4, segment_seconds=settings.HLS_SEGMENT_SECONDS)
        command = ffmpeg_command(
            sources=sources,
            concat_list=concat_list_write(sources, work),
            folder=work,
            ladder=nothing,
            source_rate_hz=files[0].sample_rate_hz,
            lossy_source=True,
            analysis_path=work / "analysis.txt",
        )
        ffmpeg_run(command, duration_ms=track.duration_ms, background=True)
        if sources_checked(files) != sources:
            return False  # the audio changed under the run: this is not its measurement
        return loudness_record(track, work / "analysis.txt")
    except (TranscodeFailed, OSError) as exc:
        logger.warning("loudness of track %s not measured: %s", track.pk, (error_text(exc).splitlines() or [""])[0])
        return False
    finally:
        shutil.rmtree(work, ignore_errors=True)


def loudness_record(track: Track, analysis_path: Path) -> bool:
    """Store what an analysis branch measured (silences for spoken word). Never fails the caller: a
    measurement that cannot be read is logged and taken again by the next transcode of this audio."""
    spoken = track.library.kind in (LibraryKind.AUDIOBOOK, LibraryKind.PODCAST)
    try:
        with analysis_path.open(encoding="utf-8", errors="replace") as lines:
            measured = parse_metadata(
                lines,
                find_silences=spoken,
                silence_threshold_lu=settings.SILENCE_THRESHOLD_LU,
                silence_min_ms=settings.SILENCE_MIN_MS,
            )
    except (OSError, ValueError) as exc:
        logger.warning("loudness of track %s not measured: %s", track.pk, exc)
        return False
    track_loudness_record(
        track_id=track.pk,
        source_fingerprint=track.source_fingerprint,
        integrated_lufs=measured.integrated_lufs,
        range_lu=measured.range_lu,
        true_peak_dbtp=measured.true_peak_dbtp,
        histogram=measured.histogram,
        silences_ms=measured.silences_flat(),
    )
    return True
