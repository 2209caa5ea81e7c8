"""Reads the pages need beyond the library and playback selectors, scoped the same way: through them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce, Lower

from apps.accounts.types import RequestUser
from apps.library import selectors as library_selectors
from apps.library.models import Album, Library, LibraryKind, Track
from apps.playback import selectors as playback_selectors
from apps.playback.progress.rules import ProgressState
from apps.playback.selectors import ProgressRow

# Where a book's narrator is tagged: a NARRATOR tag (ID3 TXXX, Vorbis, MP4 freeform), else the composer
# field, which is where Audible's and Audiobookshelf's taggers put it (ID3 TCOM, MP4 ©wrt).
NARRATOR_TAGS = ("narrator", "composer")


def continue_listening(*, user: RequestUser, limit: int) -> list[ProgressRow]:
    """What the progress API answers for `?state=in_progress`: started, not finished, newest first."""
    return list(playback_selectors.progress_in_progress(user=user)[0:limit])


class LibraryOption(TypedDict):
    id: int
    name: str
    kind: str


def library_options(*, user: RequestUser) -> list[LibraryOption]:
    """The libraries a filter may offer: only those the user may see."""
    return list(Library.objects.visible_to(user).order_by("name").values("id", "name", "kind"))


def genre_options(*, user: RequestUser, library_id: int | None = None) -> list[str]:
    return [row["name"] for row in library_selectors.name_counts(user=user, column="genres", library_id=library_id)]


def artist_has_tracks(*, user: RequestUser, name: str) -> bool:
    """Whether any visible track credits this artist (as `?artist=` finds them: track or album artist)."""
    return (
        library_selectors.track_list(user=user)
        .filter(Q(artists__contains=[name]) | Q(album_artists__contains=[name]))
        .exists()
    )


def library_albums(*, user: RequestUser, library: Library) -> QuerySet[Album]:
    return library_selectors.album_list(user=user).filter(library=library).order_by("title", "album_artist", "id")


@dataclass(frozen=True)
class ItemRow:
    """A book or an episode as a list shows it: the track (with its album), who reads it, and where the
    user is in it (None: never started)."""

    track: Track
    narrators: list[str]
    progress: ProgressState | None


def narrators_of(track: Track) -> list[str]:
    for key in NARRATOR_TAGS:
        values = track.tags.get(key) if isinstance(track.tags, dict) else None
        if values:
            return [str(value) for value in values]
    return []


def item_rows(*, user: RequestUser, tracks: Iterable[Track]) -> list[ItemRow]:
    """The rows of one page of books or episodes, with the user's progress in each (one query, plus the
    progress buffer)."""
    track_list = list(tracks)
    progress = playback_selectors.progress_of_tracks(user=user, track_ids=[track.pk for track in track_list])
    return [
        ItemRow(track=track, narrators=narrators_of(track), progress=progress.get(track.pk)) for track in track_list
    ]


def library_books(*, user: RequestUser, library: Library) -> QuerySet[Track]:
    """A book library's books, each series together under its title (books by year, then title), the
    books of no series among them by their own title."""
    return (
        library_selectors.track_list(user=user)
        .filter(library=library)
        .annotate(shelf_title=Lower(Coalesce("album__title", "title")))
        .order_by("shelf_title", "album_id", F("year").asc(nulls_last=True), "title", "id")
    )


def library_shows(*, user: RequestUser, library: Library) -> list[Album]:
    return list(library_albums(user=user, library=library))


def library_episodes(*, user: RequestUser, library: Library) -> QuerySet[Track]:
    episodes = library_selectors.track_list(user=user).filter(library=library)
    return episodes.order_by(*library_selectors.EPISODE_NEWEST_FIRST)


@dataclass(frozen=True)
class RecentItem:
    """One card of Home's "Recently added": a music album, or a book or a podcast episode (a track)."""

    album: Album | None
    track: Track | None
    added_at: datetime

    @property
    def kind(self) -> str:
        if self.track is None:
            return "album"
        return "book" if self.track.library.kind == LibraryKind.AUDIOBOOK else "episode"


def recently_added(*, user: RequestUser, limit: int) -> list[RecentItem]:
    """The newest music albums, books and podcast episodes together, newest first: two queries. Series and
    shows are not listed themselves (their books and episodes are)."""
    albums = (
        library_selectors.album_list(user=user)
        .filter(library__kind=LibraryKind.MUSIC)
        .order_by("-created_at", "-id")[:limit]
    )
    tracks = (
        library_selectors.track_list(user=user)
        .filter(library__kind__in=[LibraryKind.AUDIOBOOK, LibraryKind.PODCAST])
        .select_related("library")
        .order_by("-created_at", "-id")[:limit]
    )
    items = [RecentItem(album=album, track=None, added_at=album.created_at) for album in albums]
    items += [RecentItem(album=None, track=track, added_at=track.created_at) for track in tracks]
    items.sort(key=lambda item: item.added_at, reverse=True)
    return items[:limit]
