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
    SIMILARITY_MIN,
    TIER_PREFIX,
    TIER_SIMILAR,
    TIER_WORD,
    Matches,
    MatchRank,
    MatchSimilarity,
    SearchTerm,
    Sql,
    match_sql,
    rank_sql,
    similarity_sql,
    tier_sql,
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


# The artists' names that match the term (any tier, apps.library.search), from the distinct names of the
# albums' artists (library_artistname, migration 0010: 3 000 names where the albums carry 10 000 copies and
# the tracks 100 000; its trigram index answered 'the' in a fraction of the albums' 56 ms, bench/search.py).
# Then the artists section counts the visible music albums carrying them, and the tracks found by their
# artists are those crediting one of them (the tracks' GIN index on `artists`), rechecked with the match on
# the track's own names. A term that only matches two of a track's names joined ('simon garf' for
# ['Simon', 'Garfunkel']) and neither name alone finds no track by artist.
_NAMES_SQL = "SELECT coalesce(array_agg(name), '{{}}') FROM library_artistname WHERE {name_match}"

# The albums carrying the names through the GIN indexes on both arrays (MATERIALIZED: with the library's
# condition beside them the planner filtered all 8 600 visible albums by `&&` instead, 137 ms).
_ARTIST_SEARCH_SQL = """
WITH carrying AS MATERIALIZED (
    SELECT id, library_id, track_count, album_artists, artists FROM library_album
    WHERE album_artists && %s::varchar[] OR artists && %s::varchar[]
)
SELECT name, count(DISTINCT album.id) AS album_count
FROM carrying AS album, unnest(album.album_artists || album.artists) AS name
WHERE name = ANY(%s) AND album.library_id = ANY(%s) AND album.track_count > 0
GROUP BY name
ORDER BY min({rank}), max({similarity}) DESC, length(name), name
LIMIT %s
"""

# One tier's page per section: the rows of `rows` (section, id, search_rank, search_similarity and the order's
# columns), the best `limit` of each section in the order of TRACK_SEARCH_ORDER / SEARCH_ORDER.
_TIER_PAGE_SQL = """
SELECT section, id FROM (
    SELECT section, id, row_number() OVER (PARTITION BY section ORDER BY {order}) AS place
    FROM ({rows}) AS found
) AS ranked
WHERE place <= %s
ORDER BY section, place
"""
TIER_ARTISTS = 4  # a track whose title does not match, found by its artists
# Rows of a tier: (a source read in place of the table, or None for the table; the condition on them).
_Rows = tuple[Sql | None, Sql]
_TRACK_PAGE_ORDER = (
    "search_rank, search_similarity DESC, album_id ASC NULLS LAST, disc_number, track_number, length(title), id"
)
_ALBUM_PAGE_ORDER = "search_rank, search_similarity DESC, length(title), id"


@dataclass(frozen=True)
class _SearchTable:
    table: str
    listed: str  # what a list shows of it
    columns: str  # the order's columns
    order: str
    words_index: bool  # its title has a word index (migration 0007)


_TRACKS = _SearchTable(
    "library_track", "NOT missing", "album_id, disc_number, track_number, title", _TRACK_PAGE_ORDER, True
)
_ALBUMS = _SearchTable("library_album", "track_count > 0", "title", _ALBUM_PAGE_ORDER, False)


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
    audiobook libraries, that the user may see, matching the term: at most `limit` of each, best first.

    The ids are found tier by tier (prefix, word prefix, similar, and for tracks their artists), each tier
    asked only for the sections whose page the tiers above left short: a prefix that fills every page costs
    one btree range per table. Then the rows, with marks and covers, in one query per table. So 5 to 9
    statements (the libraries, the settings, artists, 1 to 4 tiers, albums, tracks); bench/search.py."""
    kinds: dict[str, list[int]] = {kind: [] for kind in LibraryKind.values}
    for library_id, kind in Library.objects.visible_to(user).values_list("pk", "kind"):
        kinds[kind].append(library_id)
    results = SearchResults()
    track_sections = {
        name: kinds[kind]
        for name, kind in (
            ("tracks", LibraryKind.MUSIC),
            ("episodes", LibraryKind.PODCAST),
            ("books", LibraryKind.AUDIOBOOK),
        )
        if kinds[kind]
    }
    album_sections = {
        name: kinds[kind]
        for name, kind in (("albums", LibraryKind.MUSIC), ("shows", LibraryKind.PODCAST))
        if kinds[kind]
    }
    if not track_sections:
        return results
    with transaction.atomic(), connection.cursor() as cursor:
        # For these statements only (LOCAL: until the transaction ends). PostgreSQL prices pg_trgm's operators
        # like '=' and judged reading every row cheaper than the indexes (a 1.8 s parallel seq scan of 100 000
        # tracks), so a seq scan is the last resort; which puts a disabled plan's cost above JIT's threshold,
        # and JIT then spent 0.9 s compiling one statement: off.
        cursor.execute(
            "SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true), "
            "set_config('pg_trgm.similarity_threshold', %s, true)",
            [str(SIMILARITY_MIN)],
        )
        names = _artist_names(cursor, term)
        if "tracks" in track_sections:
            results.artists = _artist_search(cursor, names, track_sections["tracks"], term, limit)
        album_ids = _tiered_ids(cursor, _ALBUMS, album_sections, term, limit, names) if album_sections else {}
        track_ids = _tiered_ids(cursor, _TRACKS, track_sections, term, limit, names)
    if any(album_ids.values()):
        wanted = [pk for ids in album_ids.values() for pk in ids]
        albums = album_list(user=user).in_bulk(wanted)
        for name, ids in album_ids.items():
            setattr(results, name, [albums[pk] for pk in ids if pk in albums])
    if any(track_ids.values()):
        wanted = [pk for ids in track_ids.values() for pk in ids]
        tracks = track_list(user=user).in_bulk(wanted)
        for name, ids in track_ids.items():
            setattr(results, name, [tracks[pk] for pk in ids if pk in tracks])
    return results


def _artist_names(cursor: Any, term: SearchTerm) -> list[str]:
    """The names of _NAMES_SQL; none for a term without a letter or digit (names are matched as a list of
    names: match_sql(prefix_index=False) leaves such a term nothing)."""
    if not term.has_word:
        return []
    name_match, params = match_sql(("search_name", []), term)
    cursor.execute(_NAMES_SQL.format(name_match=name_match), params)
    return cursor.fetchone()[0]


def _artist_search(
    cursor: Any, names: list[str], library_ids: list[int], term: SearchTerm, limit: int
) -> list[dict[str, Any]]:
    if not names:
        return []
    name: Sql = ("revenge_search_norm(name)", [])
    rank, rank_params = rank_sql(name, term)
    similarity, similarity_params = similarity_sql(name, term)
    sql = _ARTIST_SEARCH_SQL.format(rank=rank, similarity=similarity)
    cursor.execute(sql, [names, names, names, library_ids, *rank_params, *similarity_params, limit])
    return [{"name": row[0], "album_count": row[1]} for row in cursor.fetchall()]


def _tiered_ids(
    cursor: Any,
    table: _SearchTable,
    sections: dict[str, list[int]],
    term: SearchTerm,
    limit: int,
    artist_names: list[str],
) -> dict[str, list[int]]:
    """Each section's best `limit` ids of the table, tier after tier, each tier only for the sections that
    the tiers above left short."""
    found: dict[str, list[int]] = {name: [] for name in sections}
    tiers: list[tuple[int, list[_Rows] | None]] = []
    for tier in (TIER_PREFIX, TIER_WORD, TIER_SIMILAR):
        condition = tier_sql("search_title", term, tier, words_index=table.words_index)
        tiers.append((tier, None if condition is None else [(None, condition)]))
    if table is _TRACKS:
        tiers.append((TIER_ARTISTS, None))
    for tier, conditions in tiers:
        short = {name: ids for name, ids in sections.items() if len(found[name]) < limit}
        if not short:
            break
        if tier == TIER_ARTISTS:
            conditions = _tracks_by_artists(term, artist_names, [pk for ids in found.values() for pk in ids])
        if conditions is None:
            continue
        if tier == TIER_SIMILAR:
            _similar_ids(cursor, table, short, conditions, term, limit, found)
            continue
        sql, params = _tier_page_sql(table, short, tier, conditions, term, limit)
        cursor.execute(sql, params)
        for name, pk in cursor.fetchall():
            if len(found[name]) < limit:
                found[name].append(pk)
    return found


# The similarity tier asks first for rows at least this similar: every one of them ranks above every row
# below it (that tier is ordered by similarity), so a section whose page they fill is done, and the trigram
# index, which prunes by the threshold, hands over fewer candidates to recheck ('hollow midnight' on 100 000
# tracks: 4 011 at 0.45, 6 622 at 0.3). They filled the tracks' page for 49 of the benchmark's 50 exact
# queries and 35 of its 50 typos; the others are asked again at SIMILARITY_MIN.
SIMILARITY_FIRST = 0.5


def _similar_ids(
    cursor: Any,
    table: _SearchTable,
    sections: dict[str, list[int]],
    conditions: list[_Rows],
    term: SearchTerm,
    limit: int,
    found: dict[str, list[int]],
) -> None:
    threshold_sql = "SELECT set_config('pg_trgm.similarity_threshold', %s, true)"
    cursor.execute(threshold_sql, [str(SIMILARITY_FIRST)])
    try:
        for threshold in (SIMILARITY_FIRST, SIMILARITY_MIN):
            if threshold != SIMILARITY_FIRST:
                cursor.execute(threshold_sql, [str(threshold)])
            sql, params = _tier_page_sql(table, sections, TIER_SIMILAR, conditions, term, limit)
            cursor.execute(sql, params)
            rows: dict[str, list[int]] = {name: [] for name in sections}
            for name, pk in cursor.fetchall():
                rows[name].append(pk)
            last = threshold == SIMILARITY_MIN
            for name, ids in rows.items():
                if last or len(ids) >= limit - len(found[name]):
                    found[name].extend(ids[: limit - len(found[name])])
            sections = {name: ids for name, ids in sections.items() if len(found[name]) < limit and not last}
            if not sections:
                break
    finally:
        if threshold != SIMILARITY_MIN:  # the tiers after this one match at SIMILARITY_MIN
            cursor.execute(threshold_sql, [str(SIMILARITY_MIN)])


def _tracks_by_artists(term: SearchTerm, names: list[str], found: list[int]) -> list[_Rows] | None:
    """Tracks whose artists match (match_sql on search_artists), not already `found` by their title: those
    crediting one of the matching `names` (_NAMES_SQL) and those on no album (a partial trigram index,
    migration 0007, for a book or an episode whose author is on no album).

    Asked only for a section that the title tiers left short, so they found every track of it whose title
    matches: leaving out their ids leaves out the title matches without a similarity per row. The tracks of
    the names are read through the `artists` GIN index (a MATERIALIZED CTE keeps the planner from the tracks'
    trigram index, whose posting lists are the catalogue's size) and each distinct artists text is matched
    once."""
    if not term.has_word:
        return None
    artists_match, artists_params = match_sql(("search_artists", []), term, prefix_index=False)
    # The tracks of the names with the columns the page needs, read once (in place of library_track).
    by_names = (
        "(WITH by_names AS MATERIALIZED (SELECT id, library_id, missing, album_id, disc_number, track_number, "
        "title, search_artists FROM library_track WHERE artists && %s::varchar[]), matched AS MATERIALIZED "
        f"(SELECT search_artists FROM (SELECT DISTINCT search_artists FROM by_names) AS texts WHERE {artists_match}) "
        "SELECT * FROM by_names WHERE search_artists IN (SELECT search_artists FROM matched)) AS library_track"
    )
    conditions: list[_Rows] = [
        (None, (f"album_id IS NULL AND {artists_match} AND id <> ALL(%s)", [*artists_params, found]))
    ]
    if names:
        conditions.insert(0, ((by_names, [names, *artists_params]), ("id <> ALL(%s)", [found])))
    return conditions


def _tier_page_sql(
    table: _SearchTable,
    sections: dict[str, list[int]],
    tier: int,
    conditions: list[_Rows],
    term: SearchTerm,
    limit: int,
) -> Sql:
    """_TIER_PAGE_SQL over the rows meeting any of the conditions (one SELECT each, so that each can use its
    own index), each read from the table or from its own source."""
    section_sql = "CASE " + " ".join("WHEN library_id = ANY(%s) THEN %s" for _ in sections) + " END"
    section_params: list[Any] = [value for name, ids in sections.items() for value in (ids, name)]
    if tier == TIER_PREFIX:
        rank: Sql = ("CASE WHEN search_title = revenge_search_norm(%s) THEN 0 ELSE 1 END", [term.text])
    else:
        rank = (str(tier), [])
    similarity = similarity_sql(("search_title", []), term) if tier != TIER_ARTISTS else ("0.0", [])
    every_library = [pk for ids in sections.values() for pk in ids]
    selects: list[str] = []
    params: list[Any] = []
    for source, (condition, condition_params) in conditions:
        source_sql, source_params = source or (table.table, [])
        selects.append(
            f"SELECT {section_sql} AS section, id, {rank[0]} AS search_rank, {similarity[0]} AS search_similarity, "
            f"{table.columns} FROM {source_sql} WHERE library_id = ANY(%s) AND {table.listed} AND ({condition})"
        )
        params += [*section_params, *rank[1], *similarity[1], *source_params, every_library, *condition_params]
    rows = " UNION ALL ".join(selects)
    return _TIER_PAGE_SQL.format(order=table.order, rows=rows), [*params, limit]


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
