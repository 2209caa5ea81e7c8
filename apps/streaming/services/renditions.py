"""Renditions as database state: queueing them (on demand or after a scan), a lost folder queued again, the
admin's Retry, the per-track lock and the reclaim of runs whose worker died.

A transcode never holds a transaction or a row lock while ffmpeg runs. Twin runs for one track are
prevented by a PostgreSQL session advisory lock: it is released by the server when the worker's connection
drops, so a worker killed with SIGKILL never leaves a lock behind for the redelivered task.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.library.models import Track
from apps.ops.db import advisory_lock_try
from apps.streaming import metrics
from apps.streaming import services as package
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.profiles import Ladder
from apps.streaming.selectors import track_chunk_plan, track_rendition_key, track_source_files
from apps.streaming.storage import RenditionStorage

logger = logging.getLogger(__name__)

TRANSCODE_TASK = "apps.streaming.tasks.rendition_transcode_task"
CHUNK_TASK = "apps.streaming.tasks.rendition_chunk_task"
# pg_try_advisory_lock(bigint) namespace for per-track transcode locks ("RV" in the top bits).
_LOCK_NAMESPACE = 0x5256 << 40
# Per-chunk locks of a chunked rendition: "C" in the top byte, the chunk in bits 40-55, the track below.
_CHUNK_TAG = 0x43
_TRACK_BITS = 40
# Chunks of one track in the interactive queue at a time: each one done sends the next in its order, so a
# long book never puts its hundred chunks in front of the next listener's first one (which waits behind at
# most this many of another track's chunks); bulk work sends every chunk at once, for every worker to take.
INTERACTIVE_CHUNKS_IN_FLIGHT = 2
# A track's transcode is sent to a queue at most once per this many seconds: a player polling the master
# playlist every 20 ms while it answers 202 would otherwise queue one task per poll (measured: 1 587 in a
# minute, each a no-op the one interactive worker then had to get through before the next listener's track).
# After it, a request sends again: a message lost with the broker is not waited for longer than this.
SEND_ONCE_S = 60


class Outcome(enum.StrEnum):
    PUBLISHED = "published"
    ALREADY_READY = "already_ready"
    BUSY = "busy"  # another worker holds the track's lock
    FAILED = "failed"
    SOURCE_CHANGED = "source_changed"
    GONE = "gone"  # the track was deleted, or has no playable file any more
    WORKER_LOST = "worker_lost"  # its worker died mid-run (found by renditions_reclaim)


def transcode_time_limit_s(duration_ms: int) -> int:
    """Soft time limit of a track's transcode: grows with the audio's duration."""
    per_hour = settings.TRANSCODE_TIME_LIMIT_PER_HOUR_S
    return settings.TRANSCODE_TIME_LIMIT_BASE_S + int(per_hour * duration_ms / 3_600_000)


def renditions_request(
    *,
    track_ids: Iterable[int],
    interactive: bool = False,
    retry_failed: bool = False,
    position_ms: int | None = None,
) -> int:
    """Make sure each track's current renditions exist or are on their way; returns the tasks queued.

    Rows are created `pending` for the current rendition key; a task is sent (after commit) for every track
    not fully ready and not being transcoded right now (a listener joins the run in progress: its growing
    rendition, or its end). Failed rows are retried on demand until TRANSCODE_MAX_ATTEMPTS, or always with
    `retry_failed` (the admin's Retry). An interactive task transcodes growing (services.transcode).

    A long track is sent as chunks (apps.streaming.chunks), the one holding `position_ms` first (or the one
    its run started with, when it has one), then on to the end, then the beginning.
    """
    ids = sorted(set(track_ids))
    tracks = Track.objects.filter(pk__in=ids, missing=False).prefetch_related("files")
    to_send: list[tuple[int, int]] = []
    chunked: dict[int, tuple[list[int], int]] = {}  # track -> (chunk order, chunks in flight)
    with transaction.atomic():
        for track in tracks:
            files = track_source_files(track=track)
            ladder, key = track_rendition_key(track=track, files=files)
            rows_ensure(track=track, ladder=ladder, key=key)
            rows = list(Rendition.objects.filter(track=track, rendition_key=key))
            if all(r.status == RenditionStatus.READY for r in rows):
                continue
            plan = track_chunk_plan(ladder=ladder, files=files)
            busy = track_chunks_busy(track.pk) if plan is not None else not track_lock_free(track.pk)
            if any(r.status == RenditionStatus.RUNNING for r in rows) and busy:
                continue  # a worker is on it: one run, whoever asks
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
            if plan is not None:
                lead = RenditionStorage.from_settings().chunk_lead(track.pk, key)
                if lead is None or lead >= plan.chunk_count:
                    lead = plan.chunk_of(position_ms or 0)
                width = INTERACTIVE_CHUNKS_IN_FLIGHT if interactive else plan.chunk_count
                chunked[track.pk] = (plan.order(lead), width)
    # Read from the package at send time: it owns the queue names (tests point them at queues of their own).
    queue = package.INTERACTIVE_QUEUE if interactive else package.BULK_QUEUE

    def send() -> None:
        for track_id, duration_ms in to_send:
            soft = transcode_time_limit_s(duration_ms)
            claim = f"streaming:transcode-sent:{queue}:{track_id}"
            if not retry_failed and not _claim(claim):
                continue  # sent moments ago, and on its way
            try:
                if track_id in chunked:
                    order, width = chunked[track_id]
                    for position in range(min(width, len(order))):
                        chunk_send(track_id=track_id, order=order, position=position, width=width, queue=queue)
                    continue
                current_app.send_task(
                    TRANSCODE_TASK,
                    args=[track_id],
                    kwargs={"growing": True} if interactive else {},
                    queue=queue,
                    soft_time_limit=soft,
                    time_limit=soft + 60,
                )
            except Exception as exc:  # kombu's OperationalError, redis' ConnectionError: the broker is away
                # The rows stay pending: the next request for the track sends again, housekeeping re-queues
                # pending rows nobody works on. The request that asked goes on (HLS "not ready yet").
                logger.warning("transcodes not queued, broker unreachable (%s): tracks %s", exc, to_send)
                _unclaim(claim)
                return

    if to_send:
        transaction.on_commit(send)
    return len(to_send)


def chunk_send(*, track_id: int, order: list[int], position: int, width: int, queue: str) -> None:
    """Send the chunk at `position` of `order`; when it is done, its task sends the one `width` further on."""
    soft = settings.TRANSCODE_TIME_LIMIT_BASE_S + settings.TRANSCODE_TIME_LIMIT_PER_HOUR_S * 2 // 3
    current_app.send_task(
        CHUNK_TASK,
        args=[track_id],
        kwargs={"order": order, "position": position, "width": width, "queue": queue},
        queue=queue,
        soft_time_limit=soft,  # a chunk is minutes of audio: the base limit and a share of the hourly one
        time_limit=soft + 60,
    )


def _claim(key: str) -> bool:
    """Whether this request is the one to send (SEND_ONCE_S); with the cache away, every request sends."""
    try:
        return bool(cache.add(key, 1, timeout=SEND_ONCE_S))
    except Exception:  # redis' ConnectionError and friends: sending twice is harmless, not sending is not
        return True


def _unclaim(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # the cache is away too: its key expires on its own
        pass


def renditions_after_scan(*, track_ids: list[int]) -> int:
    if not settings.TRANSCODE_AFTER_SCAN or not track_ids:
        return 0
    return renditions_request(track_ids=track_ids)


def rows_ensure(*, track: Track, ladder: Ladder, key: str) -> None:
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


def track_lock(track_id: int) -> AbstractContextManager[bool]:
    """The track's transcode lock, if no other session holds it (yields whether it was acquired)."""
    return advisory_lock_try(_LOCK_NAMESPACE | track_id)


def chunk_lock(track_id: int, chunk: int) -> AbstractContextManager[bool]:
    """One chunk of a chunked rendition is made by one worker at a time; other chunks of the track run
    beside it, on other workers."""
    return advisory_lock_try((_CHUNK_TAG << 56) | (chunk << _TRACK_BITS) | track_id)


def track_chunks_busy(track_id: int) -> bool:
    """Whether a worker holds a chunk lock of this track right now."""
    with connection.cursor() as cursor:
        cursor.execute(_CHUNK_LOCKS_SQL + " LIMIT 1", {"track_id": track_id, "tag": _CHUNK_TAG})
        return cursor.fetchone() is not None


_CHUNK_LOCK_MATCH = """((l.classid::bigint << 32) | l.objid::bigint) >> 56 = %(tag)s
        AND (((l.classid::bigint << 32) | l.objid::bigint) & ((1::bigint << 40) - 1)) = {track}"""
_CHUNK_LOCKS_SQL = f"""
SELECT 1 FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND {_CHUNK_LOCK_MATCH.format(track="%(track_id)s")}
"""


def track_lock_free(track_id: int) -> bool:
    """Whether no worker is transcoding the track right now."""
    with track_lock(track_id) as acquired:
        return acquired


def rendition_folder_lost(*, track_id: int, rendition_key: str) -> int:
    """A ready rendition's files are gone from disk: mark it pending and queue it again, interactively."""
    lost = Rendition.objects.filter(
        track_id=track_id, rendition_key=rendition_key, status=RenditionStatus.READY
    ).update(status=RenditionStatus.PENDING, updated_at=timezone.now())
    if lost:
        logger.warning("renditions of track %s (%s) are missing on disk; queued again", track_id, rendition_key)
        renditions_request(track_ids=[track_id], interactive=True)
    return lost


def renditions_retry(*, rendition_ids: Iterable[int]) -> int:
    """The admin's Retry: failed renditions' tracks are queued again, attempts reset."""
    track_ids = set(
        Rendition.objects.filter(pk__in=list(rendition_ids), status=RenditionStatus.FAILED).values_list(
            "track_id", flat=True
        )
    )
    return renditions_request(track_ids=track_ids, interactive=True, retry_failed=True)


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
        AND (((l.classid::bigint << 32) | l.objid::bigint) = (%(namespace)s | r.track_id)
             OR (CHUNK_LOCK_MATCH))
  )
RETURNING r.track_id, r.status
""".replace("CHUNK_LOCK_MATCH", _CHUNK_LOCK_MATCH.format(track="r.track_id"))


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
                "tag": _CHUNK_TAG,
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
