"""Writes of the streaming pipeline: queueing, running and publishing transcodes, and housekeeping.

A transcode never holds a transaction or a row lock while ffmpeg runs. Twin runs for one track are
prevented by a PostgreSQL session advisory lock: it is released by the server when the worker's connection
drops, so a worker killed with SIGKILL never leaves a lock behind for the redelivered task.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.library.models import AudioFile, ScanTrigger, Track
from apps.library.services import scan_request, track_duration_measured
from apps.library.services.originals import OriginalRefused, audio_file_open
from apps.streaming import metrics
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.profiles import Ladder
from apps.streaming.selectors import (
    StreamDecision,
    rendition_folder,
    renditions_ready,
    stream_decide,
    track_rendition_key,
    track_source_files,
)
from apps.streaming.transcoder import (
    LOSSLESS_SOURCE_CODECS,
    TranscodeFailed,
    concat_list_text,
    ffmpeg_command,
    ffmpeg_run,
    playlist_finish,
    rendition_measure,
)

logger = logging.getLogger(__name__)

TRANSCODE_TASK = "apps.streaming.tasks.rendition_transcode_task"
INTERACTIVE_QUEUE = "transcode.interactive"
BULK_QUEUE = "transcode.bulk"
TMP_DIR_NAME = ".tmp"
# pg_try_advisory_lock(bigint) namespace for per-track transcode locks ("RV" in the top bits).
_LOCK_NAMESPACE = 0x5256 << 40


class Outcome(enum.StrEnum):
    PUBLISHED = "published"
    ALREADY_READY = "already_ready"
    BUSY = "busy"  # another worker holds the track's lock
    FAILED = "failed"
    SOURCE_CHANGED = "source_changed"
    GONE = "gone"  # the track was deleted, or has no playable file any more
    WORKER_LOST = "worker_lost"  # its worker died mid-run (found by renditions_reclaim)


@dataclass(frozen=True)
class TranscodeResult:
    outcome: Outcome
    track_id: int
    rendition_key: str = ""
    seconds: float = 0.0
    error: str = ""


def transcode_time_limit_s(duration_ms: int) -> int:
    """Soft time limit of a track's transcode: grows with the audio's duration."""
    per_hour = settings.TRANSCODE_TIME_LIMIT_PER_HOUR_S
    return settings.TRANSCODE_TIME_LIMIT_BASE_S + int(per_hour * duration_ms / 3_600_000)


def renditions_request(*, track_ids: Iterable[int], interactive: bool = False, retry_failed: bool = False) -> int:
    """Make sure each track's current renditions exist or are on their way; returns the tasks queued.

    Rows are created `pending` for the current rendition key; a task is sent (after commit) for every track
    not fully ready. Failed rows are retried on demand until TRANSCODE_MAX_ATTEMPTS, or always with
    `retry_failed` (the admin's Retry).
    """
    ids = sorted(set(track_ids))
    tracks = Track.objects.filter(pk__in=ids, missing=False).prefetch_related("files")
    to_send: list[tuple[int, int]] = []
    with transaction.atomic():
        for track in tracks:
            ladder, key = track_rendition_key(track=track)
            _rows_ensure(track=track, ladder=ladder, key=key)
            rows = list(Rendition.objects.filter(track=track, rendition_key=key))
            if all(r.status == RenditionStatus.READY for r in rows):
                continue
            failed = [r for r in rows if r.status == RenditionStatus.FAILED]
            if failed:
                if not retry_failed and max(r.attempts for r in failed) >= settings.TRANSCODE_MAX_ATTEMPTS:
                    continue
                Rendition.objects.filter(pk__in=[r.pk for r in failed]).update(
                    status=RenditionStatus.PENDING,
                    updated_at=timezone.now(),
                    **({"attempts": 0} if retry_failed else {}),
                )
            to_send.append((track.pk, track.duration_ms))
    queue = INTERACTIVE_QUEUE if interactive else BULK_QUEUE

    def send() -> None:
        for track_id, duration_ms in to_send:
            soft = transcode_time_limit_s(duration_ms)
            try:
                current_app.send_task(
                    TRANSCODE_TASK, args=[track_id], queue=queue, soft_time_limit=soft, time_limit=soft + 60
                )
            except Exception as exc:  # kombu's OperationalError, redis' ConnectionError: the broker is away
                # The rows stay pending: the next request for the track sends again, housekeeping re-queues
                # pending rows nobody works on. The request that asked goes on (HLS "not ready yet").
                logger.warning("transcodes not queued, broker unreachable (%s): tracks %s", exc, to_send)
                return

    if to_send:
        transaction.on_commit(send)
    return len(to_send)


def renditions_after_scan(*, track_ids: list[int]) -> int:
    if not settings.TRANSCODE_AFTER_SCAN or not track_ids:
        return 0
    return renditions_request(track_ids=track_ids)


@contextmanager
def _track_lock(track_id: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_NAMESPACE | track_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_NAMESPACE | track_id])


def track_lock_free(track_id: int) -> bool:
    """Whether no worker is transcoding the track right now."""
    with _track_lock(track_id) as acquired:
        return acquired


def _sources_checked(files: list[AudioFile]) -> list[Path] | None:
    """The real paths of the track's files, each checked as direct play checks it (audio_file_open: inside
    its library, the file the scan read), or None when one is not: a link swapped in must not be transcoded
    into a rendition anyone may download, and a changed file would not match the rendition key (derived
    from the recorded fingerprint)."""
    real_paths = []
    for f in files:
        try:
            original = audio_file_open(audio_file=f)
        except (OSError, OriginalRefused):
            return None
        original.file.close()
        real_paths.append(original.real_path)
    return real_paths


def rendition_transcode(*, track_id: int, progress: Callable[[float], None] | None = None) -> TranscodeResult:
    """Build every rendition of the track's current key with one ffmpeg run, and publish them."""
    track = Track.objects.filter(pk=track_id, missing=False).prefetch_related("files").first()
    files = track_source_files(track=track) if track is not None else []
    if track is None or not files:
        Rendition.objects.filter(track_id=track_id).exclude(status=RenditionStatus.READY).delete()
        return TranscodeResult(Outcome.GONE, track_id)
    ladder, key = track_rendition_key(track=track, files=files)
    final = rendition_folder(track_id=track.pk, rendition_key=key)
    with _track_lock(track.pk) as acquired:
        if not acquired:
            return TranscodeResult(Outcome.BUSY, track.pk, key)
        _rows_ensure(track=track, ladder=ladder, key=key)
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
        tmp_root = settings.RENDITIONS_ROOT / TMP_DIR_NAME
        _remove_leftovers(tmp_root, track.pk)  # of a run killed before its cleanup (we hold the lock)
        work = tmp_root / f"{track.pk}-{key}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        try:
            sources = _sources_checked(files)
            if sources is None:
                raise _SourceChanged
            out = work / key
            for profile in ladder.profiles:
                (out / profile.name).mkdir(parents=True)
            concat_list = None
            if len(files) > 1:
                concat_list = work / "sources.ffconcat"
                concat_list.write_text(concat_list_text(sources))
            command = ffmpeg_command(
                sources=sources,
                concat_list=concat_list,
                folder=out,
                ladder=ladder,
                source_rate_hz=files[0].sample_rate_hz,
                lossy_source=not all(f.codec in LOSSLESS_SOURCE_CODECS for f in files),
            )
            ffmpeg_s = ffmpeg_run(command, duration_ms=track.duration_ms, progress=progress)
            measured = []
            for profile in ladder.profiles:
                playlist_finish(out / profile.name / "index.m3u8")
                measured.append(rendition_measure(out / profile.name, profile.name))
            if _sources_checked(files) != sources:
                raise _SourceChanged
            _publish(out, final)
        except _SourceChanged:
            shutil.rmtree(work, ignore_errors=True)
            rows.update(status=RenditionStatus.PENDING, attempts=F("attempts") - 1, updated_at=timezone.now())
            # The next scan records the new file and hands the track back with a new rendition key.
            scan_request(library=track.library, trigger=ScanTrigger.SOURCE_CHANGED)
            metrics.transcode_jobs.labels(status=Outcome.SOURCE_CHANGED).inc()
            return TranscodeResult(Outcome.SOURCE_CHANGED, track.pk, key)
        except (TranscodeFailed, SoftTimeLimitExceeded, OSError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            error = _error_text(exc)
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


def _rows_ensure(*, track: Track, ladder: Ladder, key: str) -> None:
    """One `pending` row per profile of `key`, unless it exists (a task may also arrive without
    renditions_request having run, e.g. from the admin or after a redelivery)."""
    Rendition.objects.bulk_create(
        [
            Rendition(
                track=track,
                profile=p.name,
                rendition_key=key,
                segment_format=ladder.segment_format,
                codecs=p.hls_codecs,
            )
            for p in ladder.profiles
        ],
        ignore_conflicts=True,
    )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return "The transcode ran over its time limit."
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or 'renditions storage'})"
    return str(exc)


def _publish(out: Path, final: Path) -> None:
    """Move the finished folder into place with one rename: readers see all of it or none of it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        # Left by a run that died between its rename and its database update: replace it.
        trash = out.parent / f"replaced-{uuid.uuid4().hex[:8]}"
        os.rename(final, trash)
    os.rename(out, final)


def _remove_leftovers(tmp_root: Path, track_id: int) -> None:
    if not tmp_root.is_dir():
        return
    for entry in tmp_root.iterdir():
        if entry.name.startswith(f"{track_id}-"):
            shutil.rmtree(entry, ignore_errors=True)


def rendition_folder_lost(*, track_id: int, rendition_key: str) -> int:
    """A ready rendition's files are gone from disk: mark it pending and queue it again, interactively."""
    lost = Rendition.objects.filter(
        track_id=track_id, rendition_key=rendition_key, status=RenditionStatus.READY
    ).update(status=RenditionStatus.PENDING, updated_at=timezone.now())
    if lost:
        logger.warning("renditions of track %s (%s) are missing on disk; queued again", track_id, rendition_key)
        renditions_request(track_ids=[track_id], interactive=True)
    return lost


def renditions_for_playback(*, track: Track) -> list[Rendition] | None:
    """The track's ready renditions, or None after queueing them (interactive): not built yet, or their
    folder was deleted on disk behind our back (never hand out URLs that would 404)."""
    ready = renditions_ready(track=track)
    if ready is not None and not rendition_folder(track_id=track.pk, rendition_key=ready[0].rendition_key).is_dir():
        rendition_folder_lost(track_id=track.pk, rendition_key=ready[0].rendition_key)
        return None
    if ready is None:
        renditions_request(track_ids=[track.pk], interactive=True)
    return ready


def renditions_retry(*, rendition_ids: Iterable[int]) -> int:
    """The admin's Retry: failed renditions' tracks are queued again, attempts reset."""
    track_ids = set(
        Rendition.objects.filter(pk__in=list(rendition_ids), status=RenditionStatus.FAILED).values_list(
            "track_id", flat=True
        )
    )
    return renditions_request(track_ids=track_ids, interactive=True, retry_failed=True)


@dataclass
class HousekeepingResult:
    rows_deleted: int = 0
    folders_removed: int = 0
    requeued: int = 0


def renditions_housekeeping(*, stale_after: timedelta = timedelta(minutes=30)) -> HousekeepingResult:
    """Beat: drop rows and folders no longer referenced (old keys, deleted tracks, leftovers of killed runs)
    and queue again the tracks whose rendition stayed pending with nobody working on it."""
    result = HousekeepingResult()
    current: dict[int, str] = {}
    for track in Track.objects.filter(renditions__isnull=False).distinct().prefetch_related("files"):
        if track.missing:
            continue
        current[track.pk] = track_rendition_key(track=track)[1]
    doomed = [
        pk
        for pk, track_id, key in Rendition.objects.values_list("pk", "track_id", "rendition_key").iterator()
        if current.get(track_id) != key
    ]
    result.rows_deleted = Rendition.objects.filter(pk__in=doomed).delete()[0]
    root: Path = settings.RENDITIONS_ROOT
    if root.is_dir():
        for track_dir in root.iterdir():
            if track_dir.name == TMP_DIR_NAME:
                for entry in track_dir.iterdir():
                    track_id = entry.name.split("-", 1)[0]
                    if track_id.isdigit() and track_lock_free(int(track_id)):
                        shutil.rmtree(entry, ignore_errors=True)
                        result.folders_removed += 1
                continue
            if not track_dir.name.isdigit():
                continue
            keep = current.get(int(track_dir.name))
            for key_dir in track_dir.iterdir():
                if key_dir.name != keep and track_lock_free(int(track_dir.name)):
                    shutil.rmtree(key_dir, ignore_errors=True)
                    result.folders_removed += 1
            if not any(track_dir.iterdir()):
                track_dir.rmdir()
    # Rows left `running` by a dead worker are renditions_reclaim's (every 30 s); here, rows whose message
    # was lost before any worker took it.
    cutoff = timezone.now() - stale_after
    waiting = set(
        Rendition.objects.filter(status=RenditionStatus.PENDING, updated_at__lt=cutoff).values_list(
            "track_id", flat=True
        )
    )
    orphaned = [track_id for track_id in waiting if track_lock_free(track_id)]
    if orphaned:
        result.requeued = renditions_request(track_ids=orphaned)
    return result


# A `running` row whose track lock no live session holds was left by a worker that died: the lock lives
# and dies with the worker's database session (a process killed with SIGKILL closes its socket, and the
# server ends the session and frees the lock at once), so reading pg_locks tells a live claim from a dead
# one without a heartbeat written while ffmpeg runs. One statement: nothing can take the claim between
# the check and the update, and with nothing running it is an index probe and nothing more.
_RECLAIM_SQL = """
UPDATE streaming_rendition AS r
SET status = CASE WHEN r.attempts >= %(max_attempts)s THEN %(failed)s ELSE %(pending)s END,
    error = CASE WHEN r.attempts >= %(max_attempts)s THEN %(error)s ELSE r.error END,
    finished_at = CASE WHEN r.attempts >= %(max_attempts)s THEN %(now)s END,
    updated_at = %(now)s
WHERE r.status = %(running)s
  AND NOT EXISTS (
      SELECT 1 FROM pg_locks AS l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = (%(namespace)s | r.track_id)
  )
RETURNING r.track_id, r.status
"""


def renditions_reclaim() -> int:
    """Beat, every 30 s: renditions left `running` by a worker that died (its whole process group killed, its
    machine rebooted) are queued again at once instead of after housekeeping or the broker's visibility
    timeout (an hour). Returns the tracks queued.

    They go on the interactive queue: the work was already started and may be what a listener waits for;
    at most one track per dead pool process jumps ahead of bulk work. A track whose transcode kept killing
    its worker (TRANSCODE_MAX_ATTEMPTS times) is marked failed instead of being retried for ever.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _RECLAIM_SQL,
            {
                "max_attempts": settings.TRANSCODE_MAX_ATTEMPTS,
                "failed": RenditionStatus.FAILED,
                "pending": RenditionStatus.PENDING,
                "running": RenditionStatus.RUNNING,
                "error": "The worker running this transcode died, every attempt.",
                "now": timezone.now(),
                "namespace": _LOCK_NAMESPACE,
            },
        )
        reclaimed = cursor.fetchall()
    if not reclaimed:
        return 0
    lost = sorted({track_id for track_id, _ in reclaimed})
    metrics.transcode_jobs.labels(status=Outcome.WORKER_LOST).inc(len(lost))
    logger.warning("transcodes of tracks %s were left running by a dead worker", ", ".join(map(str, lost)))
    track_ids = sorted({track_id for track_id, status in reclaimed if status == RenditionStatus.PENDING})
    return renditions_request(track_ids=track_ids, interactive=True) if track_ids else 0


def stream_start(*, user, track: Track, codecs: list[str] | None, max_bitrate_kbps: int | None) -> StreamDecision:
    """A client starts playing: the stream decision, with the track's renditions queued (interactive) when
    HLS is what it should get and they are not ready, and the start counted."""
    decision = stream_decide(user=user, track=track, codecs=codecs, max_bitrate_kbps=max_bitrate_kbps)
    if decision.needs_transcode:
        renditions_request(track_ids=[track.pk], interactive=True)
    metrics.stream_starts.labels(mode=decision.mode).inc()
    return decision
