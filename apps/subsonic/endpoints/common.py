"""Reads the endpoints share: the songs of a query with what a Child shows, in a fixed number of queries.

Songs are read as plain rows (`values()`), not model instances: a full-library sync reads 500 songs per call,
and building Track, Album, Artwork and AudioFile instances for them cost more than everything else in the
request (measured with bench/subsonic.py: 0.16 s of a 0.57 s page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

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
