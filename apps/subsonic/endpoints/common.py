"""Reads the endpoints share: the songs of a query with what a Child shows, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.accounts.types import RequestUser
from apps.library.models import AudioFile, Library, Track
from apps.library.selectors import TRACK_COVER_RELATED, track_list
from apps.playback.selectors import progress_of_tracks
from apps.subsonic import mapping
from apps.subsonic.params import Params
from apps.subsonic.response import not_found

_FILE_FIELDS = ("id", "track_id", "path", "size_bytes", "codec", "format", "bitrate_kbps", "sample_rate_hz",
                "channels", "missing", "error", "root")  # fmt: skip


def with_song_fields(tracks: QuerySet[Track]) -> QuerySet[Track]:
    """What mapping.song reads, in two more queries for the whole page (libraries joined, files prefetched)."""
    files = AudioFile.objects.only(*_FILE_FIELDS).order_by("root", "path")
    related = ("library", "album", *TRACK_COVER_RELATED)
    return tracks.select_related(*related).prefetch_related(Prefetch("files", queryset=files))


def visible_tracks(user: RequestUser) -> QuerySet[Track]:
    return with_song_fields(track_list(user=user))


def song_page(user: RequestUser, tracks: Sequence[Track]) -> list[dict[str, Any]]:
    """The Child entries of these tracks with the user's play counts and resume points."""
    progress = progress_of_tracks(user=user, track_ids=[track.pk for track in tracks])
    return mapping.songs(tracks, progress)


def folder_filter(user: RequestUser, params: Params) -> int | None:
    """`musicFolderId`: a library the user may see (70 for any other), or None for all."""
    folder = params.number("musicFolderId")
    if folder is not None and not Library.objects.visible_to(user).filter(pk=folder).exists():
        raise not_found("Music folder")
    return folder
