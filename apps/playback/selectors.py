"""Reads for playback, always scoped to the user (progress is private) and to the tracks they may see.

In buffered mode the Redis buffer holds the newest writes for a few seconds before PostgreSQL does:
reads lay it over PostgreSQL (read-your-writes), keeping per (user, track) whichever state has the newest
client time. A buffer that cannot be reached is left out: PostgreSQL alone answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.library.models import Library, LibraryAccess, Track
from apps.playback import buffer
from apps.playback.models import Bookmark, Listen, PlaybackProgress, PlaybackSession, PlayQueue
from apps.playback.rules import ProgressState, from_us, newest, to_us


@dataclass(frozen=True)
class ProgressTarget:
    """What a progress write needs to know of a track the user may see."""

    track_id: int
    duration_ms: int
    kind: str
    # The user's progress row in PostgreSQL (None: never played), read in the same statement: the buffer
    # seeds itself from it and checks its clean copies against it.
    stored: ProgressState | None = None


@dataclass(frozen=True)
class ProgressRow:
    state: ProgressState
    track: Track


def progress_state_of(row: PlaybackProgress) -> ProgressState:
    return ProgressState(
        user_id=row.user_id,
        track_id=row.track_id,
        position_ms=row.position_ms,
        duration_ms=row.duration_ms,
        completed=row.completed,
        play_count=row.play_count,
        device_id=row.device_id,
        state=row.state,
        client_updated_us=to_us(row.client_updated_at),
        updated_us=to_us(row.updated_at),
    )


def _buffered() -> bool:
    return settings.PROGRESS_WRITE_MODE == "buffered" and buffer.buffer_usable()


# `Track.objects.visible_to(user)` as one hand-written statement: the progress PUT is the hottest request
# of the server, and building and planning the ORM's version of it cost more than the rest of the request
# (1.4 ms against 0.2 ms; tests/playback check both agree). psycopg prepares it after a few runs.
_TARGET_SQL = """
SELECT t.duration_ms, l.kind,
       p.position_ms, p.duration_ms, p.completed, p.play_count, p.device_id, p.state, p.client_updated_at, p.updated_at
FROM {track} t JOIN {library} l ON l.id = t.library_id
LEFT JOIN {progress} p ON p.track_id = t.id AND p.user_id = %(user_id)s
WHERE t.id = %(track_id)s
  AND (%(staff)s OR EXISTS (SELECT 1 FROM {access} a WHERE a.library_id = t.library_id AND a.user_id = %(user_id)s))
"""


def progress_target(*, user, track_id: int) -> ProgressTarget:
    if not user.is_authenticated or not user.is_active or not 0 < track_id < 2**63:
        raise Http404("No such track.")
    sql = _TARGET_SQL.format(
        track=Track._meta.db_table,
        library=Library._meta.db_table,
        access=LibraryAccess._meta.db_table,
        progress=PlaybackProgress._meta.db_table,
    )
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, {"track_id": track_id, "staff": user.is_staff, "user_id": user.pk})
        found = cursor.fetchone()
    if found is None:
        raise Http404("No such track.")
    stored = None
    if found[2] is not None:
        position_ms, duration_ms, completed, play_count, device_id, state, client_updated_at, updated_at = found[2:]
        stored = ProgressState(
            user_id=user.pk,
            track_id=track_id,
            position_ms=position_ms,
            duration_ms=duration_ms,
            completed=completed,
            play_count=play_count,
            device_id=device_id,
            state=state,
            client_updated_us=to_us(client_updated_at),
            updated_us=to_us(updated_at),
        )
    return ProgressTarget(track_id=track_id, duration_ms=found[0], kind=found[1], stored=stored)


def progress_get(*, user, track_id: int) -> tuple[ProgressTarget, ProgressState | None]:
    """The user's progress in a track they may see (None: never played); 404 for any other track."""
    target = progress_target(user=user, track_id=track_id)
    buffered = None
    if _buffered():
        try:
            buffered = buffer.buffer_get(user_id=user.pk, track_id=track_id)
        except buffer.UNAVAILABLE as error:
            buffer.buffer_failed(error)
    return target, newest(buffered, target.stored)


def _visible_progress(user) -> QuerySet[PlaybackProgress]:
    return PlaybackProgress.objects.filter(user=user, track__library__in=Library.objects.visible_to(user))


def _buffer_entries(user) -> list[buffer.BufferedEntry]:
    if not _buffered():
        return []
    try:
        return buffer.buffer_user_dirty(user_id=user.pk)
    except buffer.UNAVAILABLE as error:
        buffer.buffer_failed(error)
        return []


def _buffer_overlay(user, entries: list[buffer.BufferedEntry]) -> dict[int, ProgressRow]:
    """The user's unflushed buffer entries for tracks they may see, each merged with its PostgreSQL row."""
    if not entries:
        return {}
    states = {entry.state.track_id: entry.state for entry in entries}
    tracks = Track.objects.visible_to(user).select_related("album").in_bulk(list(states))
    stored = {row.track_id: progress_state_of(row) for row in _visible_progress(user).filter(track_id__in=tracks)}
    return {
        track_id: ProgressRow(state=newest(states[track_id], stored.get(track_id)), track=track)
        for track_id, track in tracks.items()
    }


class _MergedNewestFirst:
    """PostgreSQL rows (newest first) merged with a few buffered rows, as a sliceable sequence.

    Django's paginator asks for count() and one slice [a:b]: the first b merged rows can only come from
    the first b database rows and the buffered ones, so one bounded query answers any page.
    """

    def __init__(self, queryset: QuerySet, extra: list, *, row: Callable, key: Callable) -> None:
        self.queryset = queryset
        self.extra = extra
        self.row = row
        self.key = key

    def count(self) -> int:
        return self.queryset.count() + len(self.extra)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list:
        assert isinstance(window, slice) and window.stop is not None
        rows = [self.row(found) for found in self.queryset[: window.stop]] + self.extra
        rows.sort(key=self.key, reverse=True)
        return rows[window]


def _progress_row(row: PlaybackProgress) -> ProgressRow:
    return ProgressRow(state=progress_state_of(row), track=row.track)


def _progress_key(row: ProgressRow) -> tuple[int, int]:
    return row.state.updated_us, row.state.track_id


def progress_in_progress(*, user) -> _MergedNewestFirst:
    """ "Continue listening": started, not completed, newest first, with the track and its album."""
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .filter(completed=False, position_ms__gt=0)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album")
        .order_by("-updated_at", "-track_id")
    )
    extra = [row for row in overlay.values() if row.state.in_progress]
    return _MergedNewestFirst(queryset, extra, row=_progress_row, key=_progress_key)


def progress_of_tracks(*, user, track_ids: list[int]) -> dict[int, ProgressState]:
    """The user's progress in each of these tracks that has any (a page's rows): one PostgreSQL query and
    the buffer's unflushed entries laid over it, so a list shows what `progress_get` would for each."""
    if not track_ids:
        return {}
    states = {row.track_id: progress_state_of(row) for row in _visible_progress(user).filter(track_id__in=track_ids)}
    wanted = set(track_ids)
    for entry in _buffer_entries(user):
        track_id = entry.state.track_id
        if track_id in wanted:
            states[track_id] = newest(entry.state, states.get(track_id))
    return states


def progress_changed_since(*, user, since: datetime) -> list[ProgressRow]:
    """Every progress changed after `since` (server time), oldest first: a device catches up in one call."""
    since_us = to_us(since)
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .filter(updated_at__gt=since)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album")
    )
    rows = [_progress_row(row) for row in queryset]
    rows += [row for row in overlay.values() if row.state.updated_us > since_us]
    rows.sort(key=lambda row: (row.state.updated_us, row.state.track_id))
    return rows


def progress_all(*, user) -> _MergedNewestFirst:
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album")
        .order_by("-updated_at", "-track_id")
    )
    return _MergedNewestFirst(queryset, list(overlay.values()), row=_progress_row, key=_progress_key)


def listen_list(*, user) -> _MergedNewestFirst:
    """Listening history, newest first, with the listens still in the buffer (they have no id yet)."""
    pending = [listen for entry in _buffer_entries(user) for listen in entry.listens]
    tracks = Track.objects.visible_to(user).select_related("album").in_bulk({listen.track_id for listen in pending})
    extra = [
        Listen(
            user=user,
            track=tracks[listen.track_id],
            play_number=listen.play_number,
            device_id=listen.device_id,
            position_ms=listen.position_ms,
            listened_at=from_us(listen.listened_us),
        )
        for listen in pending
        if listen.track_id in tracks
    ]
    queryset = Listen.objects.filter(user=user, track__library__in=Library.objects.visible_to(user))
    if extra:  # a flush that committed but died before marking its entries clean: not twice
        already = Q()
        for listen in extra:
            already |= Q(track_id=listen.track_id, play_number=listen.play_number)
        queryset = queryset.exclude(already)
    queryset = queryset.select_related("track__album").order_by("-listened_at", "-id")
    return _MergedNewestFirst(queryset, extra, row=lambda listen: listen, key=_listen_key)


def _listen_key(listen: Listen) -> tuple[datetime, int]:
    return listen.listened_at, listen.pk or 2**63


def session_open_list(*, user) -> QuerySet[PlaybackSession]:
    return (
        PlaybackSession.objects.filter(
            user=user, ended_at__isnull=True, track__library__in=Library.objects.visible_to(user)
        )
        .select_related("track__album")
        .order_by("-last_seen_at", "-id")
    )


def session_get(*, user, session_id: int) -> PlaybackSession:
    session = (
        PlaybackSession.objects.filter(user=user, track__library__in=Library.objects.visible_to(user))
        .select_related("user", "track__album")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise Http404("No such session.")
    return session


def bookmark_list(*, user, track_id: int) -> QuerySet[Bookmark]:
    progress_target(user=user, track_id=track_id)
    return Bookmark.objects.filter(user=user, track_id=track_id).order_by("position_ms", "id")


def bookmark_get(*, user, bookmark_id: int) -> Bookmark:
    bookmark = (
        Bookmark.objects.filter(user=user, track__library__in=Library.objects.visible_to(user))
        .select_related("track")
        .filter(pk=bookmark_id)
        .first()
    )
    if bookmark is None:
        raise Http404("No such bookmark.")
    return bookmark


@dataclass(frozen=True)
class QueueView:
    queue: PlayQueue
    track_ids: list[int]
    current_index: int


def play_queue_get(*, user, device_id: str | None) -> QueueView:
    """The device's saved queue (or, without a device, the one saved last on any device), keeping only
    the tracks the user may still see; an empty one when none was saved."""
    queues = PlayQueue.objects.filter(user=user)
    if device_id is not None:
        queues = queues.filter(device_id=device_id)
    queue = queues.order_by("-updated_at", "-id").first()
    if queue is None:
        # Nothing saved yet is an empty queue, not an error: a new device asks before it ever saved one.
        # Unsaved, so `updated_at` is null.
        return QueueView(
            queue=PlayQueue(user=user, device_id=device_id, updated_at=None), track_ids=[], current_index=0
        )
    visible = set(Track.objects.visible_to(user).filter(pk__in=queue.track_ids).values_list("pk", flat=True))
    track_ids = [track_id for track_id in queue.track_ids if track_id in visible]
    current_index = 0
    if queue.track_ids and queue.current_index < len(queue.track_ids):
        # The current track, or the next one still visible, keeps its place.
        before = queue.track_ids[: queue.current_index]
        current_index = min(sum(1 for track_id in before if track_id in visible), max(len(track_ids) - 1, 0))
    return QueueView(queue=queue, track_ids=track_ids, current_index=current_index)
