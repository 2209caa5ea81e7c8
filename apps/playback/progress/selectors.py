"""Progress reads, always scoped to the user (progress is private) and to the tracks they may see.

In buffered mode the Redis buffer holds the newest writes for a few seconds before PostgreSQL does:
reads lay it over PostgreSQL (read-your-writes), keeping per (user, track) whichever state has the newest
client time. A buffer that is not in use or cannot be reached is left out (`buffer.buffer_attempt`):
PostgreSQL alone answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.library.models import Library, LibraryAccess, Track
from apps.ops.db import bulk_cursor
from apps.playback.models import Listen, PlaybackProgress
from apps.playback.progress import buffer
from apps.playback.progress.rules import ProgressState, newest, to_us
from apps.playback.progress.store import ROW_COLUMNS, listen_row, state_from_columns, state_from_row

if TYPE_CHECKING:
    from apps.accounts.types import RequestUser

Row = TypeVar("Row")


@dataclass(frozen=True)
class TrackForProgress:
    """A track the user may see, as a progress write (or a bookmark, or a queue) needs it."""

    user_id: int
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


# `Track.objects.visible_to(user)` as one hand-written statement: the progress PUT is the hottest request
# of the server, and building and planning the ORM's version of it cost more than the rest of the request
# (1.4 ms against 0.2 ms; tests/playback check both agree). Bound server-side, psycopg prepares it after a
# few runs.
_TARGET_SQL = """
SELECT t.duration_ms, l.kind, {columns}
FROM {track} t JOIN {library} l ON l.id = t.library_id
LEFT JOIN {progress} p ON p.track_id = t.id AND p.user_id = %(user_id)s
WHERE t.id = %(track_id)s
  AND (%(staff)s OR EXISTS (SELECT 1 FROM {access} a WHERE a.library_id = t.library_id AND a.user_id = %(user_id)s))
"""


@cache
def _target_sql() -> str:
    return _TARGET_SQL.format(
        columns=", ".join(f"p.{column}" for column in ROW_COLUMNS),
        track=Track._meta.db_table,
        library=Library._meta.db_table,
        access=LibraryAccess._meta.db_table,
        progress=PlaybackProgress._meta.db_table,
    )


def track_for_progress(*, user: RequestUser, track_id: int) -> TrackForProgress:
    """The track with the user's stored progress; 404 for a track they may not see (or that does not exist)."""
    if isinstance(user, AnonymousUser) or not user.is_active or not 0 < track_id < 2**63:
        raise Http404("No such track.")
    with bulk_cursor() as cursor:
        cursor.execute(_target_sql(), {"track_id": track_id, "staff": user.is_staff, "user_id": user.pk})
        found = cursor.fetchone()
    if found is None:
        raise Http404("No such track.")
    stored = None
    if found[2] is not None:
        stored = state_from_columns(user_id=user.pk, track_id=track_id, values=found[2:])
    return TrackForProgress(user_id=user.pk, track_id=track_id, duration_ms=found[0], kind=found[1], stored=stored)


def progress_get(*, user: RequestUser, track_id: int) -> tuple[TrackForProgress, ProgressState | None]:
    """The user's progress in a track they may see (None: never played); 404 for any other track."""
    track = track_for_progress(user=user, track_id=track_id)
    buffered = buffer.buffer_attempt(lambda: buffer.buffer_get(user_id=track.user_id, track_id=track_id))
    return track, newest(buffered, track.stored)


def _visible_progress(user: RequestUser) -> QuerySet[PlaybackProgress]:
    if isinstance(user, AnonymousUser):
        return PlaybackProgress.objects.none()
    return PlaybackProgress.objects.filter(user_id=user.pk, track__library__in=Library.objects.visible_to(user))


def _buffer_entries(user: RequestUser) -> list[buffer.BufferedEntry]:
    if isinstance(user, AnonymousUser):
        return []
    return buffer.buffer_attempt(lambda: buffer.buffer_user_dirty(user_id=user.pk)) or []


def _buffer_overlay(user: RequestUser, entries: list[buffer.BufferedEntry]) -> dict[int, ProgressRow]:
    """The user's unflushed buffer entries for tracks they may see, each merged with its PostgreSQL row."""
    if not entries:
        return {}
    states = {entry.state.track_id: entry.state for entry in entries}
    tracks = Track.objects.visible_to(user).select_related("album", "artwork", "album__artwork").in_bulk(list(states))
    stored = {row.track_id: state_from_row(row) for row in _visible_progress(user).filter(track_id__in=tracks)}
    overlay = {}
    for track_id, track in tracks.items():
        state = newest(states[track_id], stored.get(track_id))
        assert state is not None
        overlay[track_id] = ProgressRow(state=state, track=track)
    return overlay


class MergedNewestFirst(Generic[Row]):
    """PostgreSQL rows (newest first) merged with a few buffered rows, as a sliceable sequence.

    Django's paginator asks for count() and one slice [a:b]: the first b merged rows can only come from
    the first b database rows and the buffered ones, so one bounded query answers any page.
    """

    def __init__(
        self, queryset: QuerySet[Any], extra: list[Row], *, row: Callable[[Any], Row], key: Callable[[Row], Any]
    ) -> None:
        self.queryset = queryset
        self.extra = extra
        self.row = row
        self.key = key

    def count(self) -> int:
        return self.queryset.count() + len(self.extra)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list[Row]:
        assert isinstance(window, slice) and window.stop is not None
        rows = [self.row(found) for found in self.queryset[: window.stop]] + self.extra
        rows.sort(key=self.key, reverse=True)
        return rows[window]


def _progress_row(row: PlaybackProgress) -> ProgressRow:
    return ProgressRow(state=state_from_row(row), track=row.track)


def _progress_key(row: ProgressRow) -> tuple[int, int]:
    return row.state.updated_us, row.state.track_id


def progress_in_progress(*, user: RequestUser) -> MergedNewestFirst[ProgressRow]:
    """ "Continue listening": started, not completed, newest first, with the track and its album."""
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .filter(completed=False, position_ms__gt=0)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album", "track__artwork", "track__album__artwork")
        .order_by("-updated_at", "-track_id")
    )
    extra = [row for row in overlay.values() if row.state.in_progress]
    return MergedNewestFirst(queryset, extra, row=_progress_row, key=_progress_key)


def progress_of_tracks(*, user: RequestUser, track_ids: Sequence[int]) -> dict[int, ProgressState]:
    """The user's progress in each of these tracks that has any (a page's rows): one PostgreSQL query and
    the buffer's unflushed entries laid over it, so a list shows what `progress_get` would for each."""
    if not track_ids:
        return {}
    states = {row.track_id: state_from_row(row) for row in _visible_progress(user).filter(track_id__in=track_ids)}
    wanted = set(track_ids)
    for entry in _buffer_entries(user):
        track_id = entry.state.track_id
        if track_id in wanted:
            states[track_id] = newest(entry.state, states.get(track_id)) or entry.state
    return states


def progress_changed_since(*, user: RequestUser, since: datetime) -> list[ProgressRow]:
    """Every progress changed after `since` (server time), oldest first: a device catches up in one call."""
    since_us = to_us(since)
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .filter(updated_at__gt=since)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album", "track__artwork", "track__album__artwork")
    )
    rows = [_progress_row(row) for row in queryset]
    rows += [row for row in overlay.values() if row.state.updated_us > since_us]
    rows.sort(key=lambda row: (row.state.updated_us, row.state.track_id))
    return rows


def progress_all(*, user: RequestUser) -> MergedNewestFirst[ProgressRow]:
    overlay = _buffer_overlay(user, _buffer_entries(user))
    queryset = (
        _visible_progress(user)
        .exclude(track_id__in=list(overlay))
        .select_related("track__album", "track__artwork", "track__album__artwork")
        .order_by("-updated_at", "-track_id")
    )
    return MergedNewestFirst(queryset, list(overlay.values()), row=_progress_row, key=_progress_key)


def listen_list(*, user: RequestUser) -> MergedNewestFirst[Listen]:
    """Listening history, newest first, with the listens still in the buffer (they have no id yet)."""
    if isinstance(user, AnonymousUser):
        return MergedNewestFirst(Listen.objects.none(), [], row=_listen, key=_listen_key)
    pending = [listen for entry in _buffer_entries(user) for listen in entry.listens]
    tracks = (
        Track.objects.visible_to(user)
        .select_related("album", "artwork", "album__artwork")
        .in_bulk({listen.track_id for listen in pending})
    )
    extra = [listen_row(listen, track=tracks[listen.track_id]) for listen in pending if listen.track_id in tracks]
    queryset = Listen.objects.filter(user_id=user.pk, track__library__in=Library.objects.visible_to(user))
    if extra:  # a flush that committed but died before marking its entries clean: not twice
        already = Q()
        for listen in extra:
            already |= Q(track_id=listen.track_id, play_number=listen.play_number)
        queryset = queryset.exclude(already)
    queryset = queryset.select_related("track__album", "track__artwork", "track__album__artwork").order_by(
        "-listened_at", "-id"
    )
    return MergedNewestFirst(queryset, extra, row=_listen, key=_listen_key)


def _listen(listen: Listen) -> Listen:
    return listen


def _listen_key(listen: Listen) -> tuple[datetime, int]:
    return listen.listened_at, listen.pk or 2**63
