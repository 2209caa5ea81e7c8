"""Revenge's rows as the spec's objects (Child, AlbumID3, ArtistID3, ...), and the ids that name them.

Ids are strings with a kind: `tr-<track>`, `al-<album>`, `ar-<artist name, URL-safe base64>` (artists are
names in Revenge, not rows), and music folders are libraries by their number. An id of another kind where one
kind is expected, like an id the user may not see, is "not found" (70).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from apps.library.models import Album, AudioFile, LibraryKind, Track
from apps.playback.progress.rules import ProgressState
from apps.streaming.services.originals import media_type
from apps.subsonic.response import not_found

TRACK, ALBUM, ARTIST, PLAYLIST = "tr", "al", "ar", "pl"
# Subsonic's song `type`: our library kinds map one to one.
SONG_TYPES = {LibraryKind.MUSIC: "music", LibraryKind.AUDIOBOOK: "audiobook", LibraryKind.PODCAST: "podcast"}


def track_id(pk: int) -> str:
    return f"{TRACK}-{pk}"


def album_id(pk: int) -> str:
    return f"{ALBUM}-{pk}"


def playlist_id(pk: int) -> str:
    return f"{PLAYLIST}-{pk}"


def artist_id(name: str) -> str:
    return f"{ARTIST}-" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def parse_id(value: str, *kinds: str) -> tuple[str, int | str]:
    """(kind, pk or artist name) of an id of one of `kinds`; anything else is 70."""
    kind, _, rest = value.partition("-")
    if kind not in kinds or not rest:
        raise not_found()
    if kind == ARTIST:
        try:
            return kind, base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4)).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise not_found() from None
    if not rest.isascii() or not rest.isdigit() or not 0 < int(rest) < 2**63:
        raise not_found()
    return kind, int(rest)


def parse_track_id(value: str) -> int:
    pk = parse_id(value, TRACK)[1]
    assert isinstance(pk, int)
    return pk


def parse_album_id(value: str) -> int:
    pk = parse_id(value, ALBUM)[1]
    assert isinstance(pk, int)
    return pk


def parse_playlist_id(value: str) -> int:
    pk = parse_id(value, PLAYLIST)[1]
    assert isinstance(pk, int)
    return pk


def parse_artist_id(value: str) -> str:
    name = parse_id(value, ARTIST)[1]
    assert isinstance(name, str)
    return name


def _names(names: Iterable[str]) -> list[dict[str, str]]:
    return [{"id": artist_id(name), "name": name} for name in names]


def _marks(row: Track | Album) -> dict[str, Any]:
    """The caller's star and rating, where the selector annotated them (library.selectors.with_marks); a
    rating is 1-5 or absent, never 0."""
    return {"starred": getattr(row, "favourite_at", None), "userRating": getattr(row, "rating", None)}


def cover_id(row: Track | Album) -> str | None:
    """The getCoverArt id of the row's cover (a track's own picture, else its album's), once it is ready."""
    if row.cover is None:
        return None
    if isinstance(row, Album):
        return album_id(row.pk)
    album = row.album if row.album_id else None
    own = row.artwork_id is not None and row.artwork is not None and row.artwork.is_ready
    # Named by the album when it is the album's picture: apps cache covers by this id, once per album.
    if own and (album is None or row.artwork_id != album.artwork_id):
        return track_id(row.pk)
    return album_id(album.pk) if album is not None else track_id(row.pk)


def _seconds(ms: int) -> int:
    return max(0, (ms + 500) // 1000)


def _playable_files(track: Track) -> list[AudioFile]:
    return [f for f in track.files.all() if not f.missing and not f.error]


def song(track: Track, progress: ProgressState | None = None) -> dict[str, Any]:
    """A Child (song): the track with its album (select_related) and files (prefetched: no query here)."""
    album = track.album
    files = _playable_files(track)
    first = files[0] if files else None
    artists = list(track.artists) or list(track.album_artists) or ([track.album_artist] if track.album_artist else [])
    album_artists = list(track.album_artists) or ([track.album_artist] if track.album_artist else artists)
    one = first if first is not None and len(files) == 1 else None  # a book of many files has no one format
    bitrate = one.bitrate_kbps if one is not None else None
    entry: dict[str, Any] = {
        "id": track_id(track.pk),
        "parent": album_id(album.pk) if album else None,
        "isDir": False,
        "title": track.title,
        "album": album.title if album else None,
        "artist": ", ".join(artists) or None,
        "track": track.track_number,
        "year": track.year,
        "genre": track.genres[0] if track.genres else None,
        "coverArt": cover_id(track),
        "size": sum(f.size_bytes for f in files) if files else None,
        "contentType": media_type(one) if one is not None else None,
        "suffix": PurePosixPath(first.path).suffix[1:].lower() or None
        if first is not None and len(files) == 1
        else None,
        "duration": _seconds(track.duration_ms),
        "bitRate": bitrate,
        "path": one.path if one is not None else track.group_key,
        "discNumber": track.disc_number,
        "created": track.created_at,
        "albumId": album_id(album.pk) if album else None,
        "artistId": artist_id(artists[0]) if artists else None,
        "type": SONG_TYPES.get(LibraryKind(track.library.kind), "music"),
        "mediaType": "song",
        "isVideo": False,
        "samplingRate": first.sample_rate_hz if first is not None else None,
        "channelCount": first.channels if first is not None else None,
        # OpenSubsonic: the lists are always sent, empty when there is nothing.
        "genres": [{"name": genre} for genre in track.genres],
        "artists": _names(artists),
        "displayArtist": ", ".join(artists),
        "albumArtists": _names(album_artists),
        "displayAlbumArtist": ", ".join(album_artists),
        **_marks(track),
    }
    if progress is not None:
        entry["playCount"] = progress.play_count
        entry["played"] = progress.updated_at if progress.play_count else None
        if progress.in_progress:
            entry["bookmarkPosition"] = progress.position_ms
    return entry


def songs(tracks: Sequence[Track], progress: dict[int, ProgressState] | None = None) -> list[dict[str, Any]]:
    progress = progress or {}
    return [song(track, progress.get(track.pk)) for track in tracks]


def album(row: Album) -> dict[str, Any]:
    """An AlbumID3."""
    artists = list(row.album_artists) or ([row.album_artist] if row.album_artist else list(row.artists[:1]))
    return {
        "id": album_id(row.pk),
        "name": row.title,
        "artist": row.album_artist or ", ".join(artists) or None,
        "artistId": artist_id(artists[0]) if artists else None,
        "coverArt": cover_id(row),
        "songCount": row.track_count,
        "duration": _seconds(row.duration_ms),
        "created": row.created_at,
        "year": row.year,
        "genre": row.genres[0] if row.genres else None,
        "genres": [{"name": genre} for genre in row.genres],
        "artists": _names(artists),
        "displayArtist": ", ".join(artists),
        "isCompilation": row.compilation,
        "releaseTypes": [part.strip() for part in row.release_type.split(";") if part.strip()],
        **_marks(row),
    }


def album_child(row: Album) -> dict[str, Any]:
    """An album as a directory entry (getAlbumList, getMusicDirectory of an artist)."""
    entry = album(row)
    return {
        "id": entry["id"],
        "parent": entry["artistId"],
        "isDir": True,
        "title": row.title,
        "album": row.title,
        "artist": entry["artist"],
        "year": row.year,
        "genre": entry["genre"],
        "coverArt": entry["coverArt"],
        "duration": entry["duration"],
        "created": row.created_at,
        "albumId": entry["id"],
        "artistId": entry["artistId"],
        "starred": entry["starred"],
        "userRating": entry["userRating"],
    }


def artist(name: str, album_count: int, *, starred: Any = None, rating: int | None = None) -> dict[str, Any]:
    return {"id": artist_id(name), "name": name, "albumCount": album_count, "starred": starred, "userRating": rating}
