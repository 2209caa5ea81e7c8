"""Revenge's rows as the spec's objects (Child, AlbumID3, ArtistID3, ...), and the ids that name them.

Ids are strings with a kind: `tr-<track>`, `al-<album>`, `ar-<artist name, URL-safe base64>` (artists are
names in Revenge, not rows), `pl-<playlist>`, `pc-<podcast subscription>`, `pe-<feed episode>`, and music
folders are libraries by their number. An id of another kind where one
kind is expected, like an id the user may not see, is "not found" (70).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

from django.conf import settings

from apps.library.loudness import gain_db
from apps.library.models import Album, ArtworkStatus, AudioFile, LibraryKind
from apps.playback.progress.rules import ProgressState
from apps.streaming.services.originals import media_type
from apps.subsonic.response import Clean, clean_text, not_found

TRACK, ALBUM, ARTIST, PLAYLIST = "tr", "al", "ar", "pl"
CHANNEL, EPISODE = "pc", "pe"  # a podcast subscription, one episode its feed listed
# Subsonic's song `type`: our library kinds map one to one.
SONG_TYPES: dict[str, str] = {
    LibraryKind.MUSIC: "music",
    LibraryKind.AUDIOBOOK: "audiobook",
    LibraryKind.PODCAST: "podcast",
}


def track_id(pk: int) -> str:
    return f"{TRACK}-{pk}"


def album_id(pk: int) -> str:
    return f"{ALBUM}-{pk}"


def playlist_id(pk: int) -> str:
    return f"{PLAYLIST}-{pk}"


@lru_cache(maxsize=65536)
def artist_id(name: str) -> str:
    return f"{ARTIST}-" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def channel_id(pk: int) -> str:
    return f"{CHANNEL}-{pk}"


def episode_id(pk: int) -> str:
    return f"{EPISODE}-{pk}"


def parse_id(value: str, *kinds: str) -> tuple[str, int | str]:
    """(kind, pk or artist name) of an id of one of `kinds`; anything else is 70."""
    kind, _, rest = value.partition("-")
    if kind not in kinds or not rest:
        raise not_found()
    if kind == ARTIST:
        try:
            name = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4)).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise not_found() from None
        if not name or "\x00" in name:  # no artist has such a name (and PostgreSQL text cannot hold NUL)
            raise not_found()
        return kind, name
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


def parse_pk(value: str, kind: str) -> int:
    """The number of an id of this one kind (70 for any other)."""
    pk = parse_id(value, kind)[1]
    assert isinstance(pk, int)
    return pk


def parse_artist_id(value: str) -> str:
    name = parse_id(value, ARTIST)[1]
    assert isinstance(name, str)
    return name


def _names(names: Iterable[str]) -> list[dict[str, str]]:
    return [{"id": artist_id(name), "name": clean_text(name)} for name in names]


def _seconds(ms: int) -> int:
    return max(0, (ms + 500) // 1000)


# What a Child shows of a track, read as one row (endpoints.common): its album's title and both covers' state,
# and the caller's marks (library.selectors.with_marks annotates favourite_at and rating).
SONG_COLUMNS = (
    "id", "title", "artists", "album_artists", "album_artist", "genres", "track_number", "disc_number", "year",
    "duration_ms", "created_at", "group_key", "library__kind", "album_id", "album__title", "artwork_id",
    "artwork__status", "album__artwork_id", "album__artwork__status", "favourite_at", "rating",
    "source_fingerprint", "loudness__source_fingerprint", "loudness__integrated_lufs", "loudness__true_peak_dbtp",
    "album__loudness_lufs", "album__true_peak_dbtp",
)  # fmt: skip
FILE_COLUMNS = ("track_id", "path", "size_bytes", "codec", "format", "bitrate_kbps", "sample_rate_hz", "channels")


def _suffix(path: str) -> str | None:
    """What PurePosixPath(path).suffix says, without it (a 500-song page calls this 500 times)."""
    name = path.rpartition("/")[2]
    stem, dot, suffix = name.rpartition(".")
    return suffix.lower() or None if dot and stem else None


@cache
def _media_type(file_format: str, codec: str) -> str:
    return media_type(AudioFile(format=file_format, codec=codec))  # streaming's rule, once per pair


def _song_cover(row: dict[str, Any]) -> str | None:
    """Track.cover's rule on a row: the track's own picture once ready, else its album's. Named by the album
    when it is the album's picture: apps cache covers by this id, once per album."""
    own = row["artwork_id"] is not None and row["artwork__status"] == ArtworkStatus.READY
    album_ready = row["album__artwork_id"] is not None and row["album__artwork__status"] == ArtworkStatus.READY
    if own and (row["artwork_id"] != row["album__artwork_id"] or row["album_id"] is None):
        return track_id(row["id"])
    if album_ready:
        return album_id(row["album_id"])
    return None


def _linear(peak_dbtp: float | None) -> float | None:
    """ReplayGain peaks are linear amplitudes (1.0 = full scale); -inf dBTP (digital silence) is 0."""
    return None if peak_dbtp is None else round(10 ** (peak_dbtp / 20), 6)


def _replay_gain(row: dict[str, Any]) -> dict[str, float] | None:
    """OpenSubsonic's replayGain from what the transcode measured: the gains by apps.library.loudness.gain_db,
    the rule the REST API and the web player use. A measurement of other audio (an older fingerprint) is not
    this track's. Tag-only values (REPLAYGAIN_*) are left to the REST API's /loudness: apps apply the file's
    own tags when they play the original."""
    reference = float(settings.LOUDNESS_REFERENCE_LUFS)
    measured = row["loudness__source_fingerprint"] == row["source_fingerprint"]
    lufs = row["loudness__integrated_lufs"] if measured else None
    peak = row["loudness__true_peak_dbtp"] if measured else None
    album_lufs, album_peak = row["album__loudness_lufs"], row["album__true_peak_dbtp"]
    gains = {
        "trackGain": gain_db(lufs, peak, reference_lufs=reference),
        "albumGain": gain_db(album_lufs, album_peak, reference_lufs=reference),
        "trackPeak": _linear(peak),
        "albumPeak": _linear(album_peak) if album_lufs is not None else None,
    }
    present = {key: value for key, value in gains.items() if value is not None}
    return present or None


def song(row: dict[str, Any], files: list[dict[str, Any]], progress: ProgressState | None = None) -> dict[str, Any]:
    """A Child (song) from a row of SONG_COLUMNS and its playable files (rows of FILE_COLUMNS)."""
    one = files[0] if len(files) == 1 else None  # a book of many files has no one format
    first = files[0] if files else None
    album_pk = row["album_id"]
    artists = row["artists"] or row["album_artists"] or ([row["album_artist"]] if row["album_artist"] else [])
    album_artists = row["album_artists"] or ([row["album_artist"]] if row["album_artist"] else artists)
    entry: dict[str, Any] = {
        "id": track_id(row["id"]),
        "parent": album_id(album_pk) if album_pk else None,
        "isDir": False,
        "title": clean_text(row["title"]),
        "album": clean_text(row["album__title"]) if row["album__title"] is not None else None,
        "artist": clean_text(", ".join(artists)) or None,
        "track": row["track_number"],
        "year": row["year"],
        "genre": clean_text(row["genres"][0]) if row["genres"] else None,
        "coverArt": _song_cover(row),
        "size": sum(f["size_bytes"] for f in files) if files else None,
        "contentType": _media_type(one["format"], one["codec"]) if one else None,
        "suffix": clean_text(_suffix(one["path"]) or "") or None if one else None,
        "duration": _seconds(row["duration_ms"]),
        "bitRate": one["bitrate_kbps"] if one else None,
        "path": clean_text(one["path"] if one else row["group_key"]),
        "discNumber": row["disc_number"],
        "created": row["created_at"],
        "albumId": album_id(album_pk) if album_pk else None,
        "artistId": artist_id(artists[0]) if artists else None,
        "type": SONG_TYPES.get(row["library__kind"], "music"),
        "mediaType": "song",
        "isVideo": False,
        "samplingRate": first["sample_rate_hz"] if first else None,
        "channelCount": first["channels"] if first else None,
        # OpenSubsonic: the lists are always sent, empty when there is nothing.
        "genres": [{"name": clean_text(genre)} for genre in row["genres"]],
        "artists": _names(artists),
        "displayArtist": clean_text(", ".join(artists)),
        "albumArtists": _names(album_artists),
        "displayAlbumArtist": clean_text(", ".join(album_artists)),
        "starred": row["favourite_at"],
        "userRating": row["rating"],
        "replayGain": _replay_gain(row),
    }
    if progress is not None:
        entry["playCount"] = progress.play_count
        entry["played"] = progress.updated_at if progress.play_count else None
        if progress.in_progress:
            entry["bookmarkPosition"] = progress.position_ms
    return Clean({key: value for key, value in entry.items() if value is not None})


def _present(entry: dict[str, Any]) -> Clean:
    return Clean({key: value for key, value in entry.items() if value is not None})


# What an AlbumID3 shows of an album, read as one row (getAlbumList2: 50 rows, where building Album and
# Artwork instances cost 0.6 ms of CPU a call); `favourite_at` and `rating` come from with_marks.
ALBUM_COLUMNS = (
    "id", "title", "album_artists", "album_artist", "artists", "track_count", "duration_ms", "created_at", "year",
    "genres", "compilation", "release_type", "favourite_at", "rating", "artwork_id", "artwork__status",
)  # fmt: skip


def album(row: Album) -> dict[str, Any]:
    """An AlbumID3 of an Album instance (see album_of_values)."""
    values = {name: getattr(row, name, None) for name in ALBUM_COLUMNS[:-2]}
    values["id"] = row.pk
    values["cover"] = row.cover is not None
    return _album_entry(values)


def album_of_values(row: dict[str, Any]) -> dict[str, Any]:
    """An AlbumID3 of a row of ALBUM_COLUMNS; the cover by Album.cover's rule (its artwork, once ready)."""
    return _album_entry(
        {**row, "cover": row["artwork_id"] is not None and row["artwork__status"] == ArtworkStatus.READY}
    )


def _album_entry(row: dict[str, Any]) -> dict[str, Any]:
    """Built ready for JSON (a Clean: getAlbumList2 sends 50 of them, and walking plain dicts in the renderer
    was 2.6 of its 8.4 ms of CPU)."""
    artists = list(row["album_artists"]) or ([row["album_artist"]] if row["album_artist"] else list(row["artists"][:1]))
    artist_name = row["album_artist"] or ", ".join(artists)
    genres = row["genres"]
    return _present({
        "id": album_id(row["id"]),
        "name": clean_text(row["title"]),
        "artist": clean_text(artist_name) if artist_name else None,
        "artistId": artist_id(artists[0]) if artists else None,
        "coverArt": album_id(row["id"]) if row["cover"] else None,
        "songCount": row["track_count"],
        "duration": _seconds(row["duration_ms"]),
        "created": row["created_at"],
        "year": row["year"],
        "genre": clean_text(genres[0]) if genres else None,
        "genres": [{"name": clean_text(genre)} for genre in genres],
        "artists": _names(artists),
        "displayArtist": clean_text(", ".join(artists)),
        "isCompilation": row["compilation"],
        "releaseTypes": [clean_text(part.strip()) for part in row["release_type"].split(";") if part.strip()],
        "starred": row["favourite_at"],
        "userRating": row["rating"],
    })  # fmt: skip


def album_child(row: Album) -> dict[str, Any]:
    """An album as a directory entry (getAlbumList, getMusicDirectory of an artist)."""
    entry = album(row)
    return _present({
        "id": entry["id"],
        "parent": entry.get("artistId"),
        "isDir": True,
        "title": entry["name"],
        "album": entry["name"],
        "artist": entry.get("artist"),
        "year": row.year,
        "genre": entry.get("genre"),
        "coverArt": entry.get("coverArt"),
        "duration": entry["duration"],
        "created": row.created_at,
        "albumId": entry["id"],
        "artistId": entry.get("artistId"),
        "starred": entry.get("starred"),
        "userRating": entry.get("userRating"),
    })  # fmt: skip


def artist(name: str, album_count: int, *, starred: Any = None, rating: int | None = None) -> dict[str, Any]:
    return {"id": artist_id(name), "name": name, "albumCount": album_count, "starred": starred, "userRating": rating}
