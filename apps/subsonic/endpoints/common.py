"""Reads the endpoints share: the songs of a query with what a Child shows, in a fixed number of queries.

Songs are read as plain rows (`values()`), not model instances: a full-library sync reads 500 songs per call,
and building Track, Album, Artwork and AudioFile instances for them cost more than everything else in the
request (measured with bench/subsonic.py: 0.16 s of a 0.57 s page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from redis.exceptions import RedisError

from apps.accounts.types import RequestUser
from apps.library.models import AudioFile, Library, Track
from apps.library.selectors import track_list
from apps.playback.selectors import progress_of_tracks
from apps.subsonic import mapping
from apps.subsonic.params import Params
from apps.subsonic.response import not_found


def visible_tracks(user: RequestUser) -> QuerySet[Track]:
    """The listed tracks the user may see, with their marks (library.selectors.track_list)."""
    return track_list(user=user)


def songs_of(
    user: RequestUser, tracks: QuerySet[Track], start: int = 0, stop: int | None = None
) -> list[dict[str, Any]]:
    """The Child entries of a query's tracks [start:stop], in its order, with the user's play counts and
    resume points."""
    return _entries(user, list(tracks.values(*mapping.SONG_COLUMNS)[start:stop]))


# A full sync pages through every song by id with songOffset (search3 with an empty query, 500 a page). An
# OFFSET costs PostgreSQL every row before it, with its joins: on 100 000 songs the last page read 100 000
# rows (1.0 s; the whole sync O(n^2)). So the id that ended a page is kept (Redis, shared by the workers)
# under the offset that continues it, and the next page starts after it (`id > last`, the primary key
# index): the same rows while nothing changes, and when songs come or go during a sync the app gets each
# remaining song once rather than a row skipped or repeated by the shift. Without it (another offset,
# Redis away) the page is found by offset on the ids alone, then read.
SYNC_CURSOR_S = 600


def songs_by_position(
    user: RequestUser, tracks: QuerySet[Track], offset: int, count: int, *, listing: str
) -> list[dict[str, Any]]:
    """The Child entries of `tracks` (ordered by id) [offset:offset + count], for a listing paged from start
    to end; `listing` names everything that filters `tracks` (the user is added here)."""
    if count <= 0:
        return []
    # The user by id and sign-up time: ids start again in a new database (tests), the time does not.
    joined = user.date_joined.timestamp() if user.is_authenticated else 0
    key = f"subsonic:sync:{user.pk}:{joined}:{listing}:"
    after = _cursor_get(key + str(offset)) if offset else None
    if after is not None:
        rows = list(tracks.filter(pk__gt=after).values(*mapping.SONG_COLUMNS)[:count])
    else:
        page = list(tracks.values_list("pk", flat=True)[offset : offset + count])
        found = {row["id"]: row for row in tracks.filter(pk__in=page).values(*mapping.SONG_COLUMNS)}
        rows = [found[pk] for pk in page if pk in found]
    if len(rows) == count:
        _cursor_set(key + str(offset + count), rows[-1]["id"])
    return _entries(user, rows)


def _cursor_get(key: str) -> int | None:
    try:
        value = cache.get(key)
    except RedisError:
        return None
    return value if isinstance(value, int) else None


def _cursor_set(key: str, last_id: int) -> None:
    try:
        cache.set(key, last_id, timeout=SYNC_CURSOR_S)
    except RedisError:
        pass  # the next page is found by its offset


def songs_by_id(user: RequestUser, track_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The Child entries of these tracks in this order (repeats kept), leaving out those the user may not see."""
    rows = {row["id"]: row for row in visible_tracks(user).filter(pk__in=set(track_ids)).values(*mapping.SONG_COLUMNS)}
    return _entries(user, [rows[pk] for pk in track_ids if pk in rows])


def _entries(user: RequestUser, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    track_ids = {row["id"] for row in rows}
    files: dict[int, list[dict[str, Any]]] = defaultdict(list)
    playable = AudioFile.objects.filter(track_id__in=track_ids, missing=False, error="")  # as track_source_files
    for row in playable.order_by("root", "path").values(*mapping.FILE_COLUMNS):
        files[row["track_id"]].append(row)
    progress = progress_of_tracks(user=user, track_ids=list(track_ids))
    return [mapping.song(row, files[row["id"]], progress.get(row["id"])) for row in rows]


def folder_filter(user: RequestUser, params: Params) -> int | None:
    """`musicFolderId`: a library the user may see (70 for any other), or None for all."""
    folder = params.number("musicFolderId")
    if folder is not None and not Library.objects.visible_to(user).filter(pk=folder).exists():
        raise not_found("Music folder")
    return folder
