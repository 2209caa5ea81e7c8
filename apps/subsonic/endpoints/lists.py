"""Album and song lists, now playing, starred, and search (an empty query lists everything, paged: apps
sync whole libraries this way, so that path is one query per kind, ordered by id)."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Max, Q, QuerySet, Sum
from django.utils import timezone

from apps.library.models import Album, Track
from apps.library.search import (
    SEARCH_ORDER,
    SEARCH_QUERY_MIN_CHARS,
    TRACK_SEARCH_ORDER,
    SearchTerm,
    SearchTermInvalid,
    search_term,
)
from apps.library.selectors import album_list, album_matching, name_counts, track_matching
from apps.playback.selectors import session_open_list
from apps.subsonic import mapping
from apps.subsonic.endpoints.common import folder_filter, songs_by_id, songs_by_position, songs_of, visible_tracks
from apps.subsonic.params import MAX_COUNT
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError, missing

ALBUM_LIST_TYPES = (
    "random", "newest", "highest", "frequent", "recent", "alphabeticalByName", "alphabeticalByArtist", "starred",
    "byYear", "byGenre",
)  # fmt: skip


def _albums_of_type(call: Call, list_type: str) -> QuerySet[Album]:
    user, params = call.user, call.params
    albums = album_list(user=user)
    folder = folder_filter(user, params)
    if folder is not None:
        albums = albums.filter(library_id=folder)
    mine = Q(tracks__playback_progress__user_id=user.pk)
    match list_type:
        case "random":
            return albums.order_by("?")
        case "newest":
            return albums.order_by("-created_at", "-id")
        case "alphabeticalByName":
            return albums.order_by("title", "id")
        case "alphabeticalByArtist":
            return albums.order_by("album_artist", "title", "id")
        case "frequent":
            played = albums.annotate(plays=Sum("tracks__playback_progress__play_count", filter=mine))
            return played.filter(plays__gt=0).order_by("-plays", "id")
        case "recent":
            heard = albums.annotate(heard_at=Max("tracks__playback_progress__updated_at", filter=mine))
            return heard.filter(heard_at__isnull=False).order_by("-heard_at", "id")
        case "byYear":
            first = params.require_number("fromYear")
            last = params.require_number("toYear")
            within = albums.filter(year__gte=min(first, last), year__lte=max(first, last))
            return within.order_by("year" if first <= last else "-year", "title", "id")
        case "byGenre":
            return albums.filter(genres__contains=[params.require("genre")]).order_by("title", "id")
        case "highest":
            # The caller's ratings (library.selectors.with_marks annotates them): rated albums only.
            return albums.filter(Q(rating__isnull=False)).order_by(F("rating").desc(), "title", "id")
        case "starred":
            return albums.filter(Q(favourite_at__isnull=False)).order_by(F("favourite_at").desc(), "id")
    raise SubsonicError(
        ErrorCode.MISSING_PARAMETER, f"Unknown type {list_type[:50]!r}: one of {', '.join(ALBUM_LIST_TYPES)}."
    )


def _album_page(call: Call) -> QuerySet[Album]:
    list_type = call.params.require("type")
    size = call.params.count("size", 10)
    offset = call.params.number("offset", 0) or 0
    return _albums_of_type(call, list_type)[offset : offset + size]


@endpoint("getAlbumList")
def get_album_list(call: Call) -> dict[str, Any]:
    return {"albumList": {"album": [mapping.album_child(row) for row in _album_page(call)]}}


@endpoint("getAlbumList2")
def get_album_list2(call: Call) -> dict[str, Any]:
    rows = _album_page(call).values(*mapping.ALBUM_COLUMNS)
    return {"albumList2": {"album": [mapping.album_of_values(row) for row in rows]}}


def _songs_in_folder(call: Call) -> QuerySet[Track]:
    tracks = visible_tracks(call.user)
    folder = folder_filter(call.user, call.params)
    return tracks if folder is None else tracks.filter(library_id=folder)


@endpoint("getRandomSongs")
def get_random_songs(call: Call) -> dict[str, Any]:
    params = call.params
    tracks = _songs_in_folder(call)
    if genre := params.get("genre"):
        tracks = tracks.filter(genres__contains=[genre])
    if (first := params.number("fromYear")) is not None:
        tracks = tracks.filter(year__gte=first)
    if (last := params.number("toYear")) is not None:
        tracks = tracks.filter(year__lte=last)
    return {"randomSongs": {"song": songs_of(call.user, tracks.order_by("?"), 0, params.count("size", 10))}}


@endpoint("getSongsByGenre")
def get_songs_by_genre(call: Call) -> dict[str, Any]:
    params = call.params
    genre = params.require("genre")
    offset = params.number("offset", 0) or 0
    tracks = (
        _songs_in_folder(call)
        .filter(genres__contains=[genre])
        .order_by("album_id", "disc_number", "track_number", "id")
    )
    return {"songsByGenre": {"song": songs_of(call.user, tracks, offset, offset + params.count("count", 10))}}


@endpoint("getNowPlaying")
def get_now_playing(call: Call) -> dict[str, Any]:
    """The user's own open playback sessions: progress and sessions are private (DESIGN.md, Security), so
    unlike Subsonic servers that show everyone's, another user's listening is not shown."""
    sessions = list(session_open_list(user=call.user)[:MAX_COUNT])
    entries = []
    now = timezone.now()
    songs = {entry["id"]: entry for entry in songs_by_id(call.user, [s.track_id for s in sessions])}
    for session in sessions:
        entry = songs.get(mapping.track_id(session.track_id))
        if entry is None:
            continue
        entries.append(
            {
                **entry,
                "username": call.user.get_username(),
                "minutesAgo": int((now - session.last_seen_at).total_seconds() // 60),
                "playerId": session.pk,
                "playerName": session.device_id,
            }
        )
    return {"nowPlaying": {"entry": entries}}


def _search_query(call: Call) -> str:
    query = call.params.get("query")
    if query is None:
        raise missing("query")
    # Apps that sync a whole library send an empty query, some of them as two quotes (Symfonium: `""`).
    query = query.strip()
    return "" if query in ('""', "''", "*") else query.strip('"')


def _search_term(query: str) -> SearchTerm | None:
    """The library's matcher term (typo-tolerant, accent-blind: apps.library.search), None for everything.
    Apps search as the user types, so one character is searched too (as a list filter, like name_counts)."""
    if not query:
        return None
    try:
        return search_term(query)
    except SearchTermInvalid as error:
        text = " ".join(query.split())
        if text and "\x00" not in text and len(text) < SEARCH_QUERY_MIN_CHARS:
            return SearchTerm(text)
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"query: {error}") from None


def _search(call: Call) -> tuple[list[dict[str, Any]], list[Album], list[dict[str, Any]]]:
    """An empty query lists everything by id (a stable order to page through: apps sync this way); a query
    lists matches best first, as the REST API's search orders them."""
    params = call.params
    query = _search_query(call)
    term = _search_term(query)
    folder = folder_filter(call.user, params)
    artist_count, artist_offset = params.count("artistCount", 20), params.number("artistOffset", 0) or 0
    album_count, album_offset = params.count("albumCount", 20), params.number("albumOffset", 0) or 0
    song_count, song_offset = params.count("songCount", 20), params.number("songOffset", 0) or 0
    artists: list[dict[str, Any]] = []
    if artist_count:
        rows = name_counts(user=call.user, column="artists", library_id=folder, query=query)
        artists = rows[artist_offset : artist_offset + artist_count]
    albums: list[Album] = []
    if album_count:
        found = album_list(user=call.user)
        if folder is not None:
            found = found.filter(library_id=folder)
        found = found.order_by("id") if term is None else album_matching(found, term).order_by(*SEARCH_ORDER)
        albums = list(found[album_offset : album_offset + album_count])
    tracks: list[dict[str, Any]] = []
    if song_count:
        songs = _songs_in_folder(call)
        if term is None:
            tracks = songs_by_position(
                call.user, songs.order_by("id"), song_offset, song_count, listing=f"all:{folder or ''}"
            )
        else:
            songs = track_matching(songs, term).order_by(*TRACK_SEARCH_ORDER)
            tracks = songs_of(call.user, songs, song_offset, song_offset + song_count)
    return artists, albums, tracks


@endpoint("search2")
def search2(call: Call) -> dict[str, Any]:
    artists, albums, tracks = _search(call)
    return {
        "searchResult2": {
            "artist": [{"id": mapping.artist_id(row["name"]), "name": row["name"]} for row in artists],
            "album": [mapping.album_child(row) for row in albums],
            "song": tracks,
        }
    }


@endpoint("search3")
def search3(call: Call) -> dict[str, Any]:
    artists, albums, tracks = _search(call)
    return {
        "searchResult3": {
            "artist": [mapping.artist(row["name"], row["album_count"]) for row in artists],
            "album": [mapping.album(row) for row in albums],
            "song": tracks,
        }
    }
