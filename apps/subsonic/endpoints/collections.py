"""Media annotation and playlists: star, unstar, setRating, getStarred/2 and the playlist methods, over
apps.collections' services and selectors (the same rules as the REST API: a star keeps its first time, a
rating is 1-5, a playlist only its owner may change)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404

from apps.collections.models import Playlist
from apps.collections.selectors import (
    artist_get,
    artist_marks,
    favourite_albums,
    favourite_tracks,
    playlist_entries,
    playlist_get,
    playlist_list,
)
from apps.collections.services import (
    favourite_set,
    playlist_create,
    playlist_delete,
    playlist_entries_add,
    playlist_entries_remove,
    playlist_update,
)
from apps.collections.services import rating_set as collections_rating_set
from apps.collections.types import Artist, Markable
from apps.library.models import Album, Track
from apps.library.selectors import album_list, track_list
from apps.subsonic import mapping
from apps.subsonic.endpoints.common import songs_by_id, songs_of
from apps.subsonic.params import MAX_COUNT
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError, missing, not_found


def _item(call: Call, value: str, *kinds: str) -> Markable:
    """A track, album or artist the user may see, by its id (70 for anything else)."""
    kind, key = mapping.parse_id(value, *kinds)
    found: Track | Album | Artist | None
    if kind == mapping.TRACK:
        found = track_list(user=call.user).filter(pk=key).first()
    elif kind == mapping.ALBUM:
        found = album_list(user=call.user).filter(pk=key).first()
    else:
        assert isinstance(key, str)
        try:
            found = artist_get(user=call.user, name=key)
        except Http404:
            found = None
    if found is None:
        raise not_found()
    return found


def _star(call: Call, favourite: bool) -> dict[str, Any]:
    params = call.params
    # `id` may name any kind (songs, or albums and artists in folder-based apps); albumId/artistId are ID3's.
    values: list[tuple[str, tuple[str, ...]]] = [
        (value, (mapping.TRACK, mapping.ALBUM, mapping.ARTIST)) for value in params.values("id")
    ]
    values += [(value, (mapping.ALBUM,)) for value in params.values("albumId")]
    values += [(value, (mapping.ARTIST,)) for value in params.values("artistId")]
    if not values:
        raise missing("id")
    items = [_item(call, value, *kinds) for value, kinds in values]  # all checked before any is changed
    for item in items:
        favourite_set(user=call.user, item=item, favourite=favourite)
    return {}


@endpoint("star")
def star(call: Call) -> dict[str, Any]:
    return _star(call, True)


@endpoint("unstar")
def unstar(call: Call) -> dict[str, Any]:
    return _star(call, False)


@endpoint("setRating")
def set_rating(call: Call) -> dict[str, Any]:
    item = _item(call, call.params.require("id"), mapping.TRACK, mapping.ALBUM, mapping.ARTIST)
    rating = call.params.require_number("rating")
    if rating > 5:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, "rating must be from 0 (no rating) to 5.")
    collections_rating_set(user=call.user, item=item, rating=rating or None)  # 0 clears it
    return {}


@endpoint("getStarred", "getStarred2")
def get_starred(call: Call) -> dict[str, Any]:
    albums = list(favourite_albums(user=call.user)[:MAX_COUNT])
    artists = artist_marks(user=call.user, favourites_only=True)[:MAX_COUNT]
    if call.method == "getStarred2":
        body: dict[str, Any] = {
            "artist": [mapping.artist(a.name, 0, starred=a.favourite_at, rating=a.rating) for a in artists],
            "album": [mapping.album(row) for row in albums],
        }
        for entry in body["artist"]:
            del entry["albumCount"]  # not counted here: optional in ArtistID3
    else:
        body = {
            "artist": [
                {"id": mapping.artist_id(a.name), "name": a.name, "starred": a.favourite_at, "userRating": a.rating}
                for a in artists
            ],
            "album": [mapping.album_child(row) for row in albums],
        }
    body["song"] = songs_of(call.user, favourite_tracks(user=call.user), 0, MAX_COUNT)
    return {"starred2" if call.method == "getStarred2" else "starred": body}


def _checked(name: str, value: str | None, field: str) -> str | None:
    """A playlist's name or comment within the column's length (10 otherwise, never a database error)."""
    limit = getattr(Playlist._meta.get_field(field), "max_length", None)
    if value is not None and limit is not None and len(value) > limit:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"{name} is longer than {limit} characters.")
    return value


def _playlist(playlist: Playlist, *, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": mapping.playlist_id(playlist.pk),
        "name": playlist.name,
        "comment": playlist.description or None,
        "owner": playlist.owner.get_username(),
        "public": playlist.public,
        "songCount": playlist.track_count,
        "duration": max(0, (playlist.duration_ms + 500) // 1000),
        "created": playlist.created_at,
        "changed": playlist.updated_at,
    }
    if entries is not None:
        body["entry"] = entries
        body["songCount"] = len(entries)  # what this user may see of it
    return body


@endpoint("getPlaylists")
def get_playlists(call: Call) -> dict[str, Any]:
    username = call.params.get("username")
    if username is not None and username != call.user.get_username():
        raise SubsonicError(ErrorCode.NOT_AUTHORIZED, "You may only list your own playlists.")
    playlists = playlist_list(user=call.user).order_by("name", "id")[:MAX_COUNT]
    return {"playlists": {"playlist": [_playlist(p) for p in playlists]}}


def _playlist_with_entries(call: Call, pk: int) -> dict[str, Any]:
    playlist = playlist_get(user=call.user, playlist_id=pk)
    rows = playlist_entries(user=call.user, playlist=playlist)
    entries = songs_by_id(call.user, [row.track.pk for row in rows])
    return {"playlist": _playlist(playlist, entries=entries)}


@endpoint("getPlaylist")
def get_playlist(call: Call) -> dict[str, Any]:
    return _playlist_with_entries(call, mapping.parse_playlist_id(call.params.require("id")))


@endpoint("createPlaylist")
def create_playlist(call: Call) -> dict[str, Any]:
    """A new playlist (`name`), or with `playlistId` the songs of an existing one replaced."""
    params = call.params
    track_ids = [mapping.parse_track_id(value) for value in params.values("songId")]
    existing = params.get("playlistId")
    if existing:
        pk = mapping.parse_playlist_id(existing)
        with transaction.atomic():
            playlist = playlist_get(user=call.user, playlist_id=pk)
            count = playlist.track_count
            if name := _checked("name", params.get("name"), "name"):
                playlist_update(user=call.user, playlist_id=pk, name=name)
            if count:
                playlist_entries_remove(user=call.user, playlist_id=pk, positions=list(range(count)))
            if track_ids:
                playlist_entries_add(user=call.user, playlist_id=pk, track_ids=track_ids)
    else:
        name = _checked("name", params.require("name"), "name") or ""
        pk = playlist_create(owner=call.user, name=name, track_ids=track_ids).pk
    return _playlist_with_entries(call, pk)


@endpoint("updatePlaylist")
def update_playlist(call: Call) -> dict[str, Any]:
    params = call.params
    pk = mapping.parse_playlist_id(params.require("playlistId"))
    public = params.flag("public", False) if params.get("public") not in (None, "") else None
    adding = [mapping.parse_track_id(value) for value in params.values("songIdToAdd")]
    removing = [int(value) for value in params.values("songIndexToRemove") if value.strip().isdigit()]
    if len(removing) != len(params.values("songIndexToRemove")):
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, "songIndexToRemove must be positions (0, 1, ...).")
    with transaction.atomic():
        playlist_update(
            user=call.user,
            playlist_id=pk,
            name=_checked("name", params.get("name"), "name"),
            description=_checked("comment", params.get("comment"), "description"),
            public=public,
        )
        if removing:
            playlist_entries_remove(user=call.user, playlist_id=pk, positions=removing)
        if adding:
            playlist_entries_add(user=call.user, playlist_id=pk, track_ids=adding)
    return {}


@endpoint("deletePlaylist")
def delete_playlist(call: Call) -> dict[str, Any]:
    playlist_delete(user=call.user, playlist_id=mapping.parse_playlist_id(call.params.require("id")))
    return {}
