"""Reads for the library, always scoped to what the user may see (a library they were granted, or all
for staff). Anything outside that scope is indistinguishable from something that does not exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FilteredRelation, Prefetch, Q, QuerySet, prefetch_related_objects
from django.shortcuts import get_object_or_404

from apps.accounts.types import RequestUser
from apps.library.loudness import gain_db, tagged_loudness
from apps.library.models import (
    Album,
    Artwork,
    AudioFile,
    Chapter,
    Library,
    LibraryKind,
    ScanJob,
    Track,
    TrackLoudness,
)
from apps.library.scanner.grouping import play_order
from apps.library.scanner.lyrics import Lyrics
from apps.library.search import (
    SEARCH_ORDER,
    TRACK_SEARCH_ORDER,
    Matches,
    MatchRank,
    MatchSimilarity,
    SearchTerm,
    match_sql,
    rank_sql,
    similarity_sql,
)

# What "newest" means for podcast episodes, wherever they are listed (a show, a podcast library, the API):
# by publish date (the scanner falls back to the file's mtime), then when added, for rows that have none.
EPISODE_NEWEST_FIRST = (F("published_at").desc(nulls_last=True), F("created_at").desc(), F("id").desc())

M = TypeVar("M", Track, Album)


# What Track.cover reads: its own picture and its album's, joined so that a list costs no query per row.
TRACK_COVER_RELATED = ("artwork", "album__artwork")


def album_cover(*, user: RequestUser, album_id: int) -> Artwork | None:
    """The album's cover if the user may see the album (404 otherwise); None while it has none ready."""
    return get_object_or_404(album_list(user=user), pk=album_id).cover


def track_cover(*, user: RequestUser, track_id: int) -> Artwork | None:
    """The track's cover (its own, else its album's) if the user may see it (404 otherwise)."""
    return get_object_or_404(Track.objects.visible_to(user).select_related(*TRACK_COVER_RELATED), pk=track_id).cover


def library_list(*, user: RequestUser) -> QuerySet[Library]:
    return (
        Library.objects.visible_to(user)
        .select_related("last_scan")
        .annotate(track_count=Count("tracks", filter=Q(tracks__missing=False)))
        .order_by("name")
    )


def library_get(*, user: RequestUser, library_id: int) -> Library:
    return get_object_or_404(library_list(user=user), pk=library_id)


def scan_job_get(*, user: RequestUser, job_id: int) -> ScanJob:
    return get_object_or_404(
        ScanJob.objects.filter(library__in=Library.objects.visible_to(user)).select_related("library"), pk=job_id
    )


def with_marks(queryset: QuerySet[M], *, user: RequestUser) -> QuerySet[M]:
    """Each row with the user's `favourite_at` and `rating` (None: not starred, not rated), by one LEFT JOIN.

    The marks are apps.collections' (TrackMark, AlbumMark), a higher layer this app may not import: the join
    goes through the reverse relation `marks` they hang on Track and Album, so the list stays one query."""
    user_id = user.pk if user.is_authenticated else 0  # no user has id 0: an anonymous caller marks nothing
    return queryset.annotate(user_mark=FilteredRelation("marks", condition=Q(marks__user_id=user_id))).annotate(
        favourite_at=F("user_mark__favourite_at"), rating=F("user_mark__rating")
    )


def track_list(*, user: RequestUser) -> QuerySet[Track]:
    """Listed (not missing) tracks the user may see, with what a list row shows, in one query."""
    return with_marks(Track.objects.visible_to(user).listed().select_related("album", *TRACK_COVER_RELATED), user=user)


def track_get(*, user: RequestUser, track_id: int) -> Track:
    queryset = (
        Track.objects.visible_to(user)
        .select_related("album", *TRACK_COVER_RELATED)
        .prefetch_related(
            Prefetch("files", queryset=AudioFile.objects.order_by("root", "path").defer("lyrics")),
            Prefetch("chapters", queryset=Chapter.objects.order_by("index")),
        )
    )
    return get_object_or_404(with_marks(queryset, user=user), pk=track_id)


def album_list(*, user: RequestUser) -> QuerySet[Album]:
    return with_marks(
        Album.objects.filter(library__in=Library.objects.visible_to(user), track_count__gt=0).select_related("artwork"),
        user=user,
    )


def album_get(*, user: RequestUser, album_id: int) -> Album:
    """The album with its listed tracks: disc by disc in track order, or a show's episodes newest first."""
    album = get_object_or_404(album_list(user=user).select_related("library"), pk=album_id)
    if album.library.kind == LibraryKind.PODCAST:
        order: tuple[Any, ...] = EPISODE_NEWEST_FIRST
    else:
        order = ("disc_number", "track_number", "title", "id")
    tracks = with_marks(Track.objects.listed().select_related("album", *TRACK_COVER_RELATED), user=user).order_by(
        *order
    )
    prefetch_related_objects([album], Prefetch("tracks", queryset=tracks))
    return album


def artist_albums(*, user: RequestUser, name: str) -> tuple[list[Album], list[Album]]:
    """An artist's page: the albums they are an album artist of, and those they only appear on (a track
    of theirs on a compilation or someone else's album), each by year then title."""
    albums = album_list(user=user).filter(Q(album_artists__contains=[name]) | Q(artists__contains=[name]))
    own: list[Album] = []
    appears_on: list[Album] = []
    for album in albums.order_by(F("year").asc(nulls_last=True), "title", "id"):
        (own if name in album.album_artists else appears_on).append(album)
    return own, appears_on


_NAME_COUNTS_SQL = """
SELECT name, count(*) AS track_count, count(DISTINCT track.album_id) AS album_count
FROM library_track AS track, unnest(track.{column}) AS name
WHERE NOT track.missing AND track.library_id = ANY(%s) {extra}
GROUP BY name
ORDER BY lower(name), name
"""


def name_counts(
    *, user: RequestUser, column: str, library_id: int | None = None, query: str = ""
) -> list[dict[str, Any]]:
    """Distinct artists or genres of the visible tracks, with how many tracks and albums carry each."""
    if column not in ("artists", "genres"):
        raise ValueError(column)
    libraries = Library.objects.visible_to(user)
    if library_id is not None:
        libraries = libraries.filter(pk=library_id)
    library_ids = list(libraries.values_list("pk", flat=True))
    if not library_ids:
        return []
    extra = ""
    params: list[Any] = [library_ids]
    if " ".join(query.split()):
        # The search matcher (apps.library.search), without its minimum length: a list filter, not a search.
        extra, match_params = match_sql(("revenge_search_norm(name)", []), SearchTerm(" ".join(query.split())))
        extra = f"AND {extra}"
        params += match_params
    with connection.cursor() as cursor:
        cursor.execute(_NAME_COUNTS_SQL.format(column=column, extra=extra), params)
        return [{"name": name, "track_count": tracks, "album_count": albums} for name, tracks, albums in cursor]


def track_lyrics(*, user: RequestUser, track_id: int) -> Lyrics:
    """The track's lyrics if the user may see it (404 otherwise; empty Lyrics when it has none). A book made
    of several files: each file's synced lines moved onto the book's timeline, plain texts joined. For the
    REST API and the OpenSubsonic getLyrics/getLyricsBySongId alike."""
    track = get_object_or_404(Track.objects.visible_to(user).only("id"), pk=track_id)
    files = sorted(
        AudioFile.objects.filter(track=track, missing=False, error="").only(
            "root", "path", "tags", "duration_ms", "lyrics"
        ),
        key=play_order,
    )
    result = Lyrics()
    plains: list[str] = []
    start_ms = 0
    for audio_file in files:
        lyrics = Lyrics.from_json(audio_file.lyrics)
        if not lyrics.empty:
            result.synced.extend((start_ms + line_ms, text) for line_ms, text in lyrics.synced)
            plains.append(lyrics.plain)
            result.language = result.language or lyrics.language
            result.source = result.source or lyrics.source
        start_ms += audio_file.duration_ms
    result.plain = "\n\n".join(plain for plain in plains if plain)
    return result


def track_matching(queryset: QuerySet[Track], term: SearchTerm, *, by_album: bool = True) -> QuerySet[Track]:
    """Tracks whose title or artists match, or (`by_album`) their album's title: the tracks' `q=` filter, and
    search without by_album (its albums are a section of their own, and the album subquery in an OR keeps
    PostgreSQL from combining the trigram indexes: on 5 000 tracks it read every row). Best first when ordered
    by apps.library.search.TRACK_SEARCH_ORDER."""
    matches = Q(Matches(F("search_title"), term)) | Q(Matches(F("search_artists"), term, prefix_index=False))
    if by_album:
        matches |= Q(album__in=Album.objects.filter(Matches(F("search_title"), term)).values("pk"))
    return queryset.filter(matches).annotate(
        search_rank=MatchRank(F("search_title"), term), search_similarity=MatchSimilarity(F("search_title"), term)
    )


def album_matching(queryset: QuerySet[Album], term: SearchTerm) -> QuerySet[Album]:
    """Albums (shows, series) whose title matches, with `search_rank` and `search_similarity`."""
    return queryset.filter(Matches(F("search_title"), term)).annotate(
        search_rank=MatchRank(F("search_title"), term), search_similarity=MatchSimilarity(F("search_title"), term)
    )


_ARTIST_SEARCH_SQL = """
SELECT name, count(DISTINCT album.id) AS album_count
FROM library_album AS album, unnest(album.album_artists || album.artists) AS name
WHERE album.library_id = ANY(%s) AND album.track_count > 0 AND {albums_match} AND {name_match}
GROUP BY name
ORDER BY min({rank}), max({similarity}) DESC, length(name), name
LIMIT %s
"""


@dataclass
class SearchResults:
    """What /api/v1/search answers, each kind best match first. Artists are names (there is no artist row):
    album artists and everyone credited on an album, with how many visible albums carry them."""

    artists: list[dict[str, Any]] = field(default_factory=list)
    albums: list[Album] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    shows: list[Album] = field(default_factory=list)
    episodes: list[Track] = field(default_factory=list)
    books: list[Track] = field(default_factory=list)


def search(*, user: RequestUser, term: SearchTerm, limit: int) -> SearchResults:
    """Artists, albums and tracks of music libraries, shows and episodes of podcast libraries, books of
    audiobook libraries, that the user may see, matching the term: at most `limit` of each, in 8 statements
    (the libraries, SET LOCAL, then one per kind)."""
    kinds: dict[str, list[int]] = {kind: [] for kind in LibraryKind.values}
    for library_id, kind in Library.objects.visible_to(user).values_list("pk", "kind"):
        kinds[kind].append(library_id)
    results = SearchResults()
    music, podcasts, books = kinds[LibraryKind.MUSIC], kinds[LibraryKind.PODCAST], kinds[LibraryKind.AUDIOBOOK]
    if not (music or podcasts or books):
        return results
    with transaction.atomic(), connection.cursor() as cursor:
        # PostgreSQL prices pg_trgm's operators like '=' (COST 1), so it judged reading every row cheaper than
        # the trigram indexes: on 100 000 tracks a parallel seq scan took 1.8 s (bench/search.py). Only for
        # these statements (LOCAL: until the transaction ends), a seq scan is the last resort.
        cursor.execute("SET LOCAL enable_seqscan = off")
        if music:
            results.artists = _artist_search(music, term, limit)
        for library_ids, attribute in ((music, "albums"), (podcasts, "shows")):
            if library_ids:
                albums = album_matching(album_list(user=user).filter(library_id__in=library_ids), term)
                setattr(results, attribute, list(albums.order_by(*SEARCH_ORDER)[:limit]))
        for library_ids, attribute in ((music, "tracks"), (podcasts, "episodes"), (books, "books")):
            if library_ids:
                tracks = track_matching(track_list(user=user).filter(library_id__in=library_ids), term, by_album=False)
                setattr(results, attribute, list(tracks.order_by(*TRACK_SEARCH_ORDER)[:limit]))
    return results


def _artist_search(library_ids: list[int], term: SearchTerm, limit: int) -> list[dict[str, Any]]:
    albums_where = "album.search_names"
    name: tuple[str, list[Any]] = ("revenge_search_norm(name)", [])
    albums_match, albums_params = match_sql((albums_where, []), term, prefix_index=False)
    name_match, name_params = match_sql(name, term)
    rank, rank_params = rank_sql(name, term)
    similarity, similarity_params = similarity_sql(name, term)
    sql = _ARTIST_SEARCH_SQL.format(albums_match=albums_match, name_match=name_match, rank=rank, similarity=similarity)
    params = [library_ids, *albums_params, *name_params, *rank_params, *similarity_params, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [{"name": row[0], "album_count": row[1]} for row in cursor]


@dataclass(frozen=True)
class LoudnessInfo:
    """A track's loudness and gains as clients apply them: measured (EBU R128 in the transcode's decode), else
    as tagged (REPLAYGAIN_* / R128_*), else unknown (gains None). -inf loudness (digital silence) is kept as
    such here; the API says `digital_silence` instead of a number JSON cannot carry."""

    origin: str  # "measured", "tags" or "none"
    integrated_lufs: float | None
    range_lu: float | None
    true_peak_dbtp: float | None
    track_gain_db: float | None
    album_lufs: float | None
    album_peak_dbtp: float | None
    album_gain_db: float | None
    reference_lufs: float
    silences_ms: list[tuple[int, int]]


def track_loudness(*, user: RequestUser, track_id: int) -> LoudnessInfo:
    """The track's loudness, gains and (spoken word) silences if the user may see it (404 otherwise)."""
    track = get_object_or_404(Track.objects.visible_to(user).select_related("album"), pk=track_id)
    reference = float(settings.LOUDNESS_REFERENCE_LUFS)
    measured = TrackLoudness.objects.filter(track=track, source_fingerprint=track.source_fingerprint).first()
    tagged = tagged_loudness(track.tags)
    album = track.album
    album_measured = album is not None and album.loudness_lufs is not None
    album_lufs = album.loudness_lufs if album is not None and album_measured else tagged.album_lufs
    album_peak = album.true_peak_dbtp if album is not None and album_measured else tagged.album_peak_dbtp
    lufs: float | None
    range_lu: float | None
    peak: float | None
    if measured is not None:
        origin, lufs, range_lu, peak = "measured", measured.integrated_lufs, measured.range_lu, measured.true_peak_dbtp
        flat = measured.silences_ms
        silences = [(flat[index], flat[index + 1]) for index in range(0, len(flat) - 1, 2)]
    else:
        origin = "tags" if tagged.track_lufs is not None else "none"
        lufs, range_lu, peak, silences = tagged.track_lufs, None, tagged.track_peak_dbtp, []
    return LoudnessInfo(
        origin=origin,
        integrated_lufs=lufs,
        range_lu=range_lu,
        true_peak_dbtp=peak,
        track_gain_db=gain_db(lufs, peak, reference_lufs=reference),
        album_lufs=album_lufs,
        album_peak_dbtp=album_peak,
        album_gain_db=gain_db(album_lufs, album_peak, reference_lufs=reference),
        reference_lufs=reference,
        silences_ms=silences,
    )
