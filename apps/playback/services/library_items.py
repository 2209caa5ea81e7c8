"""Bookmarks and play queues: small per-user rows, written straight to PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.library.models import Track
from apps.ops.errors import DomainError
from apps.playback.models import MAX_QUEUE_TRACKS, Bookmark, PlayQueue, RepeatMode
from apps.playback.progress.rules import POSITION_SLACK_MS
from apps.playback.progress.selectors import track_for_progress

if TYPE_CHECKING:
    from apps.accounts.types import User


def _check_position(position_ms: int, duration_ms: int) -> None:
    limit_ms = duration_ms + POSITION_SLACK_MS
    if position_ms > limit_ms:
        raise DomainError(
            "Invalid input.",
            fields={"position_ms": [f"Ensure this value is less than or equal to {limit_ms} (the track's end)."]},
        )


def bookmark_create(*, user: User, track_id: int, position_ms: int, note: str = "") -> Bookmark:
    track = track_for_progress(user=user, track_id=track_id)
    _check_position(position_ms, track.duration_ms)
    return Bookmark.objects.create(user=user, track_id=track_id, position_ms=position_ms, note=note)


def bookmark_update(*, bookmark: Bookmark, position_ms: int | None = None, note: str | None = None) -> Bookmark:
    """`bookmark` comes from selectors.bookmark_get (the user's own, on a track they may see)."""
    if position_ms is not None:
        _check_position(position_ms, bookmark.track.duration_ms)
        bookmark.position_ms = position_ms
    if note is not None:
        bookmark.note = note
    bookmark.save(update_fields=["position_ms", "note", "updated_at"])
    return bookmark


def bookmark_delete(*, bookmark: Bookmark) -> None:
    bookmark.delete()


def play_queue_save(
    *,
    user: User,
    device_id: str,
    track_ids: list[int],
    current_index: int = 0,
    position_ms: int = 0,
    shuffle: bool = False,
    repeat: str = RepeatMode.OFF,
) -> PlayQueue:
    """Save a device's whole queue. Every track must be one the user may see (else 400, nothing saved)."""
    if len(track_ids) > MAX_QUEUE_TRACKS:
        raise DomainError("Invalid input.", fields={"track_ids": [f"At most {MAX_QUEUE_TRACKS} tracks."]})
    if track_ids and not 0 <= current_index < len(track_ids) or not track_ids and current_index != 0:
        raise DomainError("Invalid input.", fields={"current_index": ["Not a position in track_ids."]})
    unique = set(track_ids)
    visible = set(Track.objects.visible_to(user).filter(pk__in=unique).values_list("pk", flat=True))
    unknown = sorted(unique - visible)
    if unknown:
        shown = ", ".join(str(track_id) for track_id in unknown[:20])
        raise DomainError("Invalid input.", fields={"track_ids": [f"No such tracks: {shown}."]})
    if track_ids:
        current = track_for_progress(user=user, track_id=track_ids[current_index])
        _check_position(position_ms, current.duration_ms)
    queue = PlayQueue(
        user=user,
        device_id=device_id,
        track_ids=track_ids,
        current_index=current_index,
        position_ms=position_ms,
        shuffle=shuffle,
        repeat=repeat,
    )
    # INSERT ... ON CONFLICT (user, device_id) DO UPDATE: two saves racing never collide.
    PlayQueue.objects.bulk_create(
        [queue],
        update_conflicts=True,
        unique_fields=["user", "device_id"],
        update_fields=["track_ids", "current_index", "position_ms", "shuffle", "repeat", "updated_at"],
    )
    return queue
