"""Beat housekeeping of renditions: rows and folders no longer referenced, leftovers of killed runs, and
pending rows whose message was lost."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from apps.library.models import Track
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import track_rendition_key
from apps.streaming.services.renditions import renditions_request, track_chunks_busy, track_lock_free
from apps.streaming.storage import RenditionStorage


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
    storage = RenditionStorage.from_settings()
    if storage.root.is_dir():
        for track_dir in storage.root.iterdir():
            if track_dir == storage.tmp_root:
                for entry in track_dir.iterdir():
                    track_id = entry.name.split("-", 1)[0]
                    # A chunk's work folder is its worker's while that holds the chunk's lock (not the track's).
                    idle = track_id.isdigit() and track_lock_free(int(track_id))
                    if idle and not track_chunks_busy(int(track_id)):
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
