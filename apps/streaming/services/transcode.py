"""Running one transcode: every rendition of a track's current key from one ffmpeg run, its rows marked ready
in one transaction. A bulk run is published by one rename (readers see all of it or none of it); a growing
run (interactive: a listener is waiting) writes in place, segment by segment, each whole before it is listed
(storage.LIVE_PLAYLIST_NAME), and withdraws everything it published if it fails."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.library.models import ScanTrigger, Track
from apps.library.services import scan_request, track_duration_measured
from apps.library.services.loudness import track_loudness_current
from apps.streaming import metrics
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import track_chunk_plan, track_rendition_key, track_source_files
from apps.streaming.services.analysis import loudness_record
from apps.streaming.services.chunked import chunk_run
from apps.streaming.services.renditions import Outcome, rows_ensure, track_lock
from apps.streaming.services.sources import error_text, remove_leftovers, sources_checked
from apps.streaming.storage import PLAYLIST_NAME, RenditionStorage
from apps.streaming.transcoder import (
    TranscodeFailed,
    concat_list_write,
    ffmpeg_command,
    ffmpeg_run,
    playlist_finish,
    playlist_from_live,
    rendition_measure,
    sources_lossless,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscodeResult:
    outcome: Outcome
    track_id: int
    rendition_key: str = ""
    seconds: float = 0.0
    error: str = ""


def rendition_transcode(
    *, track_id: int, progress: Callable[[float], None] | None = None, growing: bool = False
) -> TranscodeResult:
    """Build every rendition of the track's current key with one ffmpeg run, and publish them: at the end
    by one rename, or `growing`, segment by segment in place (the master playlist is served as soon as every
    profile has its first segment: playback.master_playlist_for_playback)."""
    track = Track.objects.filter(pk=track_id, missing=False).prefetch_related("files").first()
    files = track_source_files(track=track) if track is not None else []
    if track is None or not files:
        Rendition.objects.filter(track_id=track_id).exclude(status=RenditionStatus.READY).delete()
        return TranscodeResult(Outcome.GONE, track_id)
    ladder, key = track_rendition_key(track=track, files=files)
    plan = track_chunk_plan(ladder=ladder, files=files)
    if plan is not None:
        # A chunked track asked for as a whole (the admin, a requeue): its chunks one after the other here;
        # renditions_request sends them as tasks of their own instead.
        started = time.monotonic()
        outcomes = [chunk_run(track_id=track.pk, chunk=c, lead=0, background=True) for c in plan.order(0)]
        failed = [o for o in outcomes if o not in (Outcome.PUBLISHED, Outcome.ALREADY_READY)]
        outcome = failed[0] if failed else Outcome.PUBLISHED
        return TranscodeResult(outcome, track.pk, key, seconds=time.monotonic() - started)
    storage = RenditionStorage.from_settings()
    final = storage.folder(track.pk, key)
    with track_lock(track.pk) as acquired:
        if not acquired:
            return TranscodeResult(Outcome.BUSY, track.pk, key)
        rows_ensure(track=track, ladder=ladder, key=key)
        rows = Rendition.objects.filter(track=track, rendition_key=key)
        if final.is_dir() and not rows.exclude(status=RenditionStatus.READY).exists():
            return TranscodeResult(Outcome.ALREADY_READY, track.pk, key)
        rows.update(
            status=RenditionStatus.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            error="",
            attempts=F("attempts") + 1,
            updated_at=timezone.now(),
        )
        tmp_root = storage.tmp_root
        remove_leftovers(tmp_root, prefix=f"{track.pk}-")  # of a run killed before its cleanup (we hold the lock)
        if final.exists():
            # Not all ready, and nobody else holds the lock: what is there was left by a run that died
            # (a growing one mid-way, or one between its rename and its database update). Start over.
            shutil.rmtree(final, ignore_errors=True)
        work = tmp_root / f"{track.pk}-{key}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        try:
            sources = sources_checked(files)
            if sources is None:
                raise _SourceChanged
            out = final if growing else work / key
            for profile in ladder.profiles:
                (out / profile.name).mkdir(parents=True)
            work.mkdir(parents=True, exist_ok=True)
            # Loudness is measured in this decode unless this audio was measured already (by fingerprint).
            analysis_path = None if track_loudness_current(track=track) else work / "analysis.txt"
            command = ffmpeg_command(
                sources=sources,
                concat_list=concat_list_write(sources, work),
                folder=out,
                ladder=ladder,
                source_rate_hz=files[0].sample_rate_hz,
                lossy_source=not sources_lossless([f.codec for f in files]),
                growing=growing,
                analysis_path=analysis_path,
            )
            ffmpeg_s = ffmpeg_run(command, duration_ms=track.duration_ms, progress=progress, background=not growing)
            measured = []
            for profile in ladder.profiles:
                if growing:
                    playlist_from_live(out / profile.name)
                playlist_finish(out / profile.name / PLAYLIST_NAME)
                measured.append(rendition_measure(out / profile.name, profile.name))
            if sources_checked(files) != sources:
                raise _SourceChanged
            if not growing:
                _publish(out, final)
            if analysis_path is not None:
                loudness_record(track, analysis_path)
        except _SourceChanged:
            shutil.rmtree(work, ignore_errors=True)
            if growing:
                shutil.rmtree(final, ignore_errors=True)  # withdrawn: nothing of the old source stays listed
            rows.update(status=RenditionStatus.PENDING, attempts=F("attempts") - 1, updated_at=timezone.now())
            # The next scan records the new file and hands the track back with a new rendition key.
            scan_request(library=track.library, trigger=ScanTrigger.SOURCE_CHANGED)
            metrics.transcode_jobs.labels(status=Outcome.SOURCE_CHANGED).inc()
            return TranscodeResult(Outcome.SOURCE_CHANGED, track.pk, key)
        except (TranscodeFailed, SoftTimeLimitExceeded, OSError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            if growing:
                # Withdraw what was published: players get 404s and the failed status, never a wrong byte.
                shutil.rmtree(final, ignore_errors=True)
            error = error_text(exc)
            rows.update(
                status=RenditionStatus.FAILED, error=error, finished_at=timezone.now(), updated_at=timezone.now()
            )
            metrics.transcode_jobs.labels(status=Outcome.FAILED).inc()
            logger.warning("transcode of track %s failed: %s", track.pk, error.splitlines()[0] if error else "")
            return TranscodeResult(Outcome.FAILED, track.pk, key, error=error)
        shutil.rmtree(work, ignore_errors=True)
        now = timezone.now()
        with transaction.atomic():
            for m in measured:
                rows.filter(profile=m.profile).update(
                    status=RenditionStatus.READY,
                    size_bytes=m.size_bytes,
                    peak_bitrate_bps=m.peak_bitrate_bps,
                    average_bitrate_bps=m.average_bitrate_bps,
                    segment_count=m.segment_count,
                    duration_ms=m.duration_ms,
                    transcode_ms=round(ffmpeg_s * 1000),
                    finished_at=now,
                    error="",
                    updated_at=now,
                )
            # A file cut short after its header was written decodes to less than the header claims.
            track_duration_measured(track=track, measured_ms=max(m.duration_ms for m in measured))
    seconds = time.monotonic() - started
    metrics.transcode_jobs.labels(status=Outcome.PUBLISHED).inc()
    metrics.transcode_seconds.observe(seconds)
    return TranscodeResult(Outcome.PUBLISHED, track.pk, key, seconds=seconds)


class _SourceChanged(Exception):
    pass


def _publish(out: Path, final: Path) -> None:
    """Move the finished folder into place with one rename: readers see all of it or none of it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        # Left by a run that died between its rename and its database update: replace it.
        trash = out.parent / f"replaced-{uuid.uuid4().hex[:8]}"
        os.rename(final, trash)
    os.rename(out, final)
