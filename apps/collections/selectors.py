"""Reads for collections, scoped to the user and to what they may see (a track of a library they have no
grant for is never shown, in a favourite list, a playlist or a smart playlist)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.accounts.types import RequestUser
from apps.collections.models import AlbumMark, ArtistMark, Mark, Playlist, PlaylistEntry, SmartPlaylist, TrackMark
from apps.collections.playlist_files import M3U8Item
from apps.collections.smart_query import SmartTracks, smart_tracks
from apps.collections.smart_rules import BUILTINS, rules_parse
from apps.collections.types import NO_MARK, Artist, Markable, MarkState
from apps.library import selectors as library_selectors
from apps.library.models import Album, AudioFile, Library, Track


def artist_get(*, user: RequestUser, name: str) -> Artist:
    """The artist of that exact name if a listed track the user may see credits them; else 404."""
    tracks = library_selectors.track_list(user=user)
    if not name or not tracks.filter(Q(artists__contains=[name]) | Q(album_artists__contains=[name])).exists():
        raise Http404("No such artist.")
    return Artist(name=name)


def mark_get(*, user: RequestUser, item: Markable) -> MarkState:
    if not user.is_authenticated:
        return NO_MARK
    marks: QuerySet[TrackMark] | QuerySet[AlbumMark] | QuerySet[ArtistMark]
    if isinstance(item, Track):
        marks = TrackMark.objects.filter(user=user, track_id=item.pk)
    elif isinstance(item, Album):
        marks = AlbumMark.objects.filter(user=user, album_id=item.pk)
    else:
        marks = ArtistMark.objects.filter(user=user, name=item.name)
    mark: Mark | None = marks.first()
    return MarkState(favourite_at=mark.favourite_at, rating=mark.rating) if mark else NO_MARK


def favourite_tracks(*, user: RequestUser) -> QuerySet[Track]:
    """The user's starred tracks that they may still see, newest star first."""
    return (
        library_selectors.track_list(user=user)
        .filter(Q(favourite_at__isnull=False))
        .order_by(F("favourite_at").desc(), "id")
    )


def favourite_albums(*, user: RequestUser) -> QuerySet[Album]:
    return (
        library_selectors.album_list(user=user)
        .filter(Q(favourite_at__isnull=False))
        .order_by(F("favourite_at").desc(), "id")
    )


@dataclass(frozen=True)
class ArtistMarkRow:
    name: str
    favourite_at: datetime | None
    rating: int | None


def artist_marks(*, user: RequestUser, favourites_only: bool = False) -> list[ArtistMarkRow]:
    """The user's marked artists (starred or rated; `favourites_only`: starred) that a track they may see
    still credits, newest star first. One query for the marks, one for which names are still visible."""
    if not user.is_authenticated:
        return []
    marks = ArtistMark.objects.filter(user=user)
    if favourites_only:
        marks = marks.filter(favourite_at__isnull=False)
    rows = list(marks.order_by("-favourite_at", "name"))
    if not rows:
        return []
    names = [row.name for row in rows]
    visible = _names_credited(user=user, names=names)
    return [
        ArtistMarkRow(name=row.name, favourite_at=row.favourite_at, rating=row.rating)
        for row in rows
        if row.name in visible
    ]


_CREDITED_SQL = """
SELECT name FROM unnest(%s::varchar[]) AS name
WHERE EXISTS (
    SELECT 1 FROM library_track AS track
    WHERE NOT track.missing AND track.library_id = ANY(%s)
      AND (track.artists @> ARRAY[name] OR track.album_artists @> ARRAY[name])
)
"""


def _names_credited(*, user: RequestUser, names: list[str]) -> set[str]:
    """Which of `names` a listed track the user may see credits (artist or album artist): one query, one GIN
    lookup per name (the marks of one user are few; the tracks of a starred artist may be many)."""
    library_ids = list(Library.objects.visible_to(user).values_list("pk", flat=True))
    if not library_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_CREDITED_SQL, [names, library_ids])
        return {name for (name,) in cursor}


def playlist_list(*, user: RequestUser) -> QuerySet[Playlist]:
    """The user's own playlists and everyone's public ones."""
    if not user.is_authenticated:
        return Playlist.objects.none()
    return Playlist.objects.filter(Q(owner=user) | Q(public=True)).select_related("owner")


def playlist_get(*, user: RequestUser, playlist_id: int) -> Playlist:
    return get_object_or_404(playlist_list(user=user), pk=playlist_id)


@dataclass(frozen=True)
class PlaylistEntryRow:
    position: int
    track: Track  # with the user's favourite_at and rating


def playlist_entries(*, user: RequestUser, playlist: Playlist) -> list[PlaylistEntryRow]:
    """The entries whose tracks the user may see (a public playlist shows the rest of someone else's), in
    order, each with its real position (what the edit endpoints take). Two queries whatever the size."""
    positions = list(
        PlaylistEntry.objects.filter(playlist=playlist).order_by("position").values_list("position", "track_id")
    )
    tracks = library_selectors.track_list(user=user).in_bulk({track_id for _position, track_id in positions})
    return [
        PlaylistEntryRow(position=position, track=tracks[track_id])
        for position, track_id in positions
        if track_id in tracks
    ]


def playlist_m3u8_items(*, user: RequestUser, playlist: Playlist) -> list[M3U8Item]:
    """What an M3U8 export of the playlist lists for this user: each visible entry by its first file's path
    relative to its library root (a multi-file book by its first file, which an import resolves back)."""
    entries = playlist_entries(user=user, playlist=playlist)
    first_files = dict(
        AudioFile.objects.filter(track_id__in={row.track.pk for row in entries})
        .order_by("track_id", "root", "path")
        .distinct("track_id")
        .values_list("track_id", "path")
    )
    return [
        M3U8Item(
            path=first_files[row.track.pk],
            duration_ms=row.track.duration_ms,
            artists=list(row.track.artists),
            title=row.track.title,
        )
        for row in entries
        if row.track.pk in first_files
    ]


def smart_playlist_list(*, user: RequestUser) -> QuerySet[SmartPlaylist]:
    if not user.is_authenticated:
        return SmartPlaylist.objects.none()
    return SmartPlaylist.objects.filter(owner=user)


def smart_playlist_get(*, user: RequestUser, smart_playlist_id: int) -> SmartPlaylist:
    return get_object_or_404(smart_playlist_list(user=user), pk=smart_playlist_id)


def smart_playlist_tracks(*, user: RequestUser, rules: Any) -> SmartTracks:
    """The tracks of stored (already checked) or built-in rules, evaluated now: one query per slice (and
    one for a count)."""
    return smart_tracks(user=user, rules=rules_parse(rules))


@dataclass(frozen=True)
class BuiltinSmartPlaylist:
    slug: str
    name: str
    rules: dict[str, Any]


def smart_playlist_builtins() -> list[BuiltinSmartPlaylist]:
    return [BuiltinSmartPlaylist(slug=slug, name=name, rules=rules) for slug, (name, rules) in BUILTINS.items()]


def smart_playlist_builtin(*, slug: str) -> BuiltinSmartPlaylist:
    if slug not in BUILTINS:
        raise Http404("No such built-in smart playlist.")
    name, rules = BUILTINS[slug]
    return BuiltinSmartPlaylist(slug=slug, name=name, rules=rules)
