"""Reads for collections, scoped to the user and to what they may see (a track of a library they have no
grant for is never shown, in a favourite list, a playlist or a smart playlist)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.http import Http404

from apps.accounts.types import RequestUser
from apps.collections.models import AlbumMark, ArtistMark, Mark, TrackMark
from apps.collections.types import NO_MARK, Artist, Markable, MarkState
from apps.library import selectors as library_selectors
from apps.library.models import Album, Library, Track


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
