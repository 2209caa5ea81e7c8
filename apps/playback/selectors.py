"""Reads for playback, always scoped to the user and to the tracks they may see: sessions, bookmarks, play
queues here; progress and listens in apps.playback.progress.selectors, whose public reads are named here
too so that other apps have one module to read playback from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from apps.library.models import Library, Track
from apps.playback.models import Bookmark, PlaybackSession, PlayQueue
from apps.playback.progress.selectors import (
    MergedNewestFirst,
    ProgressRow,
    TrackForProgress,
    listen_list,
    progress_all,
    progress_changed_since,
    progress_get,
    progress_in_progress,
    progress_of_tracks,
    track_for_progress,
)

if TYPE_CHECKING:
    from apps.accounts.types import RequestUser

__all__ = [
    "MergedNewestFirst",
    "ProgressRow",
    "QueueState",
    "TrackForProgress",
    "bookmark_get",
    "bookmark_list",
    "listen_list",
    "play_queue_get",
    "progress_all",
    "progress_changed_since",
    "progress_get",
    "progress_in_progress",
    "progress_of_tracks",
    "session_get",
    "session_open_list",
    "track_for_progress",
]


def _owner_id(user: RequestUser) -> int:
    """The id whose rows a user reads; an anonymous user has none: 404, like any row they may not see."""
    if isinstance(user, AnonymousUser):
        raise Http404("Not found.")
    return user.pk


def session_open_list(*, user: RequestUser) -> QuerySet[PlaybackSession]:
    if isinstance(user, AnonymousUser):
        return PlaybackSession.objects.none()
    return (
        PlaybackSession.objects.filter(
            user_id=user.pk, ended_at__isnull=True, track__library__in=Library.objects.visible_to(user)
        )
        .select_related("track__album")
        .order_by("-last_seen_at", "-id")
    )


def session_get(*, user: RequestUser, session_id: int) -> PlaybackSession:
    session = (
        PlaybackSession.objects.filter(user_id=_owner_id(user), track__library__in=Library.objects.visible_to(user))
        .select_related("user", "track__album")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise Http404("No such session.")
    return session


def bookmark_list(*, user: RequestUser, track_id: int) -> QuerySet[Bookmark]:
    track = track_for_progress(user=user, track_id=track_id)
    return Bookmark.objects.filter(user_id=track.user_id, track_id=track_id).order_by("position_ms", "id")


def bookmark_get(*, user: RequestUser, bookmark_id: int) -> Bookmark:
    bookmark = (
        Bookmark.objects.filter(user_id=_owner_id(user), track__library__in=Library.objects.visible_to(user))
        .select_related("track")
        .filter(pk=bookmark_id)
        .first()
    )
    if bookmark is None:
        raise Http404("No such bookmark.")
    return bookmark


@dataclass(frozen=True)
class QueueState:
    """A device's queue as it reads now: the saved row, with only the tracks the user may still see."""

    queue: PlayQueue
    track_ids: list[int]
    current_index: int


def play_queue_get(*, user: RequestUser, device_id: str | None) -> QueueState:
    """The device's saved queue (or, without a device, the one saved last on any device), keeping only
    the tracks the user may still see; an empty one when none was saved."""
    user_id = _owner_id(user)
    queues = PlayQueue.objects.filter(user_id=user_id)
    if device_id is not None:
        queues = queues.filter(device_id=device_id)
    queue = queues.order_by("-updated_at", "-id").first()
    if queue is None:
        # Nothing saved yet is an empty queue, not an error: a new device asks before it ever saved one.
        # Unsaved, so `updated_at` is null.
        queue = PlayQueue(user_id=user_id, device_id=device_id, updated_at=None)  # type: ignore[misc]
        return QueueState(queue=queue, track_ids=[], current_index=0)
    visible = set(Track.objects.visible_to(user).filter(pk__in=queue.track_ids).values_list("pk", flat=True))
    track_ids = [track_id for track_id in queue.track_ids if track_id in visible]
    current_index = 0
    if queue.track_ids and queue.current_index < len(queue.track_ids):
        # The current track, or the next one still visible, keeps its place.
        before = queue.track_ids[: queue.current_index]
        current_index = min(sum(1 for track_id in before if track_id in visible), max(len(track_ids) - 1, 0))
    return QueueState(queue=queue, track_ids=track_ids, current_index=current_index)
