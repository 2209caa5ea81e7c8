"""Browsing: folders, indexes, directories, artists, albums, songs, genres, and the minimal info answers."""

from __future__ import annotations

from typing import Any

from django.db.models import F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from apps.library.models import Library
from apps.library.selectors import album_get, album_list, artist_albums, name_counts
from apps.playback.models import PlaybackProgress
from apps.subsonic import mapping
from apps.subsonic.endpoints.common import folder_filter, songs_by_id, songs_of, visible_tracks
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import not_found

IGNORED_ARTICLES = ("The", "El", "La", "Los", "Las", "Le", "Les")


@endpoint("getMusicFolders")
def get_music_folders(call: Call) -> dict[str, Any]:
    libraries = Library.objects.visible_to(call.user).order_by("name")
    return {"musicFolders": {"musicFolder": [{"id": lib.pk, "name": lib.name} for lib in libraries]}}


def _index_letter(name: str) -> str:
    for article in IGNORED_ARTICLES:
        if name.lower().startswith(article.lower() + " "):
            name = name[len(article) + 1 :]
            break
    first = name.strip()[:1].upper()
    return first if first.isalpha() else "#"


def _artist_index(call: Call) -> list[dict[str, Any]]:
    folder = folder_filter(call.user, call.params)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in name_counts(user=call.user, column="artists", library_id=folder):
        groups.setdefault(_index_letter(row["name"]), []).append(mapping.artist(row["name"], row["album_count"]))
    return [{"name": letter, "artist": groups[letter]} for letter in sorted(groups, key=lambda k: (k == "#", k))]


@endpoint("getIndexes")
def get_indexes(call: Call) -> dict[str, Any]:
    return {"indexes": {"lastModified": 0, "ignoredArticles": " ".join(IGNORED_ARTICLES), "index": _artist_index(call)}}


@endpoint("getArtists")
def get_artists(call: Call) -> dict[str, Any]:
    return {"artists": {"ignoredArticles": " ".join(IGNORED_ARTICLES), "index": _artist_index(call)}}


def _artist_albums(call: Call, name: str) -> list[Any]:
    own, appears_on = artist_albums(user=call.user, name=name)
    if not own and not appears_on:
        raise not_found("Artist")
    return own + appears_on


@endpoint("getArtist")
def get_artist(call: Call) -> dict[str, Any]:
    name = mapping.parse_artist_id(call.params.require("id"))
    albums = _artist_albums(call, name)
    return {"artist": {**mapping.artist(name, len(albums)), "album": [mapping.album(row) for row in albums]}}


def _album_songs(call: Call, pk: int) -> tuple[Any, list[dict[str, Any]]]:
    album = album_get(user=call.user, album_id=pk)  # the album's own order of its tracks (podcast: newest first)
    return album, songs_by_id(call.user, [track.pk for track in album.tracks.all()])


@endpoint("getAlbum")
def get_album(call: Call) -> dict[str, Any]:
    album, songs = _album_songs(call, mapping.parse_album_id(call.params.require("id")))
    return {"album": {**mapping.album(album), "song": songs}}


@endpoint("getSong")
def get_song(call: Call) -> dict[str, Any]:
    entries = songs_by_id(call.user, [mapping.parse_track_id(call.params.require("id"))])
    if not entries:
        raise not_found("Song")
    return {"song": entries[0]}


@endpoint("getMusicDirectory")
def get_music_directory(call: Call) -> dict[str, Any]:
    value = call.params.require("id")
    kind, key = mapping.parse_id(value, mapping.ARTIST, mapping.ALBUM)
    if kind == mapping.ARTIST:
        assert isinstance(key, str)
        albums = _artist_albums(call, key)
        return {"directory": {"id": value, "name": key, "child": [mapping.album_child(row) for row in albums]}}
    assert isinstance(key, int)
    album, songs = _album_songs(call, key)
    entry = mapping.album(album)
    return {"directory": {"id": value, "parent": entry.get("artistId"), "name": album.title, "child": songs}}


@endpoint("getGenres")
def get_genres(call: Call) -> dict[str, Any]:
    rows = name_counts(user=call.user, column="genres")
    return {
        "genres": {
            "genre": [
                {"value": row["name"], "songCount": row["track_count"], "albumCount": row["album_count"]}
                for row in rows
            ]
        }
    }


@endpoint("getArtistInfo", "getArtistInfo2")
def get_artist_info(call: Call) -> dict[str, Any]:
    # No biographies or similar artists are known to Revenge (nothing is fetched from the internet): an
    # empty answer for an artist the user may see, as the spec allows.
    name = mapping.parse_artist_id(call.params.require("id"))
    _artist_albums(call, name)
    key = "artistInfo2" if call.method == "getArtistInfo2" else "artistInfo"
    return {key: {}}


@endpoint("getAlbumInfo", "getAlbumInfo2")
def get_album_info(call: Call) -> dict[str, Any]:
    value = call.params.require("id")
    album_pk = mapping.parse_album_id(value)
    if not album_list(user=call.user).filter(pk=album_pk).exists():
        raise not_found("Album")
    return {"albumInfo": {}}


@endpoint("getTopSongs")
def get_top_songs(call: Call) -> dict[str, Any]:
    """The artist's songs this user played most (Revenge knows no global charts), then by title."""
    name = call.params.require("artist")
    count = call.params.count("count", 50)
    plays = PlaybackProgress.objects.filter(user_id=call.user.pk, track_id=OuterRef("pk")).values("play_count")[:1]
    tracks = (
        visible_tracks(call.user)
        .filter(artists__contains=[name])
        .annotate(plays=Coalesce(Subquery(plays, output_field=IntegerField()), Value(0)))
        .order_by(F("plays").desc(), "title", "id")
    )
    return {"topSongs": {"song": songs_of(call.user, tracks, 0, count)}}


@endpoint("getSimilarSongs", "getSimilarSongs2")
def get_similar_songs(call: Call) -> dict[str, Any]:
    # Honest minimal: Revenge has no similarity data, so no song is claimed similar.
    value = call.params.require("id")
    mapping.parse_id(value, mapping.TRACK, mapping.ALBUM, mapping.ARTIST)
    key = "similarSongs2" if call.method == "getSimilarSongs2" else "similarSongs"
    return {key: {}}
