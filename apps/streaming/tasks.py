from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.streaming.services import (
    rendition_chunk_transcode,
    rendition_transcode,
    renditions_after_scan,
    renditions_housekeeping,
    renditions_reclaim,
    track_loudness_measure,
)


# What runs ffmpeg: acknowledged when done (a message redelivered after a worker died finds the track or chunk
# lock free and starts over in a clean temp folder), retried only while the database is away for a moment
# (ffmpeg errors are final, recorded on the rows). Time limits are set per message by the sender (they grow
# with the track's duration).
def _ffmpeg_task(name: str) -> Any:
    return shared_task(
        name=name,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(OperationalError, InterfaceError),
        retry_backoff=5,
        retry_backoff_max=300,
        max_retries=5,
    )


@_ffmpeg_task("apps.streaming.tasks.rendition_transcode_task")
def rendition_transcode_task(track_id: int, growing: bool = False) -> dict[str, object]:
    result = rendition_transcode(track_id=track_id, growing=growing)
    return {"track": track_id, "outcome": str(result.outcome), "key": result.rendition_key, "s": result.seconds}


# One chunk of a long track (apps.streaming.chunks); when done it sends the next one of its order. A message
# redelivered after its worker died redoes the chunk (same bytes).
@_ffmpeg_task("apps.streaming.tasks.rendition_chunk_task")
def rendition_chunk_task(
    track_id: int, *, order: list[int], position: int, width: int, queue: str
) -> dict[str, object]:
    outcome = rendition_chunk_transcode(track_id=track_id, order=order, position=position, width=width, queue=queue)
    return {"track": track_id, "chunk": order[position], "outcome": str(outcome)}


# A chunked track's loudness, once all its chunks are done (services.analysis): on transcode.bulk by the routes.
@_ffmpeg_task("apps.streaming.tasks.track_loudness_measure_task")
def track_loudness_measure_task(track_id: int) -> dict[str, object]:
    return {"track": track_id, "measured": track_loudness_measure(track_id=track_id)}


@shared_task(name="apps.streaming.tasks.renditions_housekeeping_task")
def renditions_housekeeping_task() -> dict[str, int]:
    result = renditions_housekeeping()
    return {"rows_deleted": result.rows_deleted, "folders_removed": result.folders_removed, "requeued": result.requeued}


@shared_task(name="apps.streaming.tasks.renditions_reclaim_task")
def renditions_reclaim_task() -> dict[str, int]:
    return {"requeued": renditions_reclaim()}


# Sent by name by the library after a scan (apps/library/services/handoff.py): queueing is quick, the
# transcodes themselves are separate messages on `transcode.bulk`.
@shared_task(name="apps.streaming.tasks.renditions_after_scan_task")
def renditions_after_scan_task(*, track_ids: list[int]) -> dict[str, int]:
    return {"queued": renditions_after_scan(track_ids=track_ids)}
