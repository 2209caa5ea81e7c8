"""Search (apps.library.search, selectors.search, GET /api/v1/search, the lists' q=) on real PostgreSQL with
pg_trgm and unaccent: ranking, accents and typos, access scoping, query counts, bad input, index use."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.library.models import Album, Library, LibraryKind
from apps.library.search import (
    TIER_PREFIX,
    TIER_SIMILAR,
    TIER_WORD,
    SearchTerm,
    SearchTermInvalid,
    match_sql,
    search_term,
    tier_sql,
)
from apps.library.selectors import search
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


def album(library: Library, title: str, artists: list[str], tracks: list[str]) -> Album:
    row = Album.objects.create(
        library=library,
        title=title,
        album_artist=", ".join(artists),
        album_artists=artists,
        artists=artists,
        track_count=len(tracks),
    )
    for number, title in enumerate(tracks, start=1):
        TrackFactory(library=library, album=row, title=title, artists=artists, track_number=number)
    return row


@pytest.fixture
def world():
    music = LibraryFactory(name="Music")
    album(music, "Ace of Spades", ["Motörhead"], ["Ace of Spades", "Love Me Like a Reptile"])
    album(music, "Abbey Road", ["The Beatles"], ["Come Together", "Something", "Here Comes the Sun"])
    album(music, "Ágætis byrjun", ["Sigur Rós"], ["Svefn-g-englar", "Starálfur"])
    album(music, "Sunny Afternoon", ["The Kinks"], ["Sunny Afternoon"])
    album(music, "100% Pure", ["Percent_Band"], ["100% Pure", "Back\\slash"])
    books = LibraryFactory(name="Books", kind=LibraryKind.AUDIOBOOK)
    TrackFactory(library=books, title="The Sun Also Rises", artists=["Ernest Hemingway"])
    podcasts = LibraryFactory(name="Podcasts", kind=LibraryKind.PODCAST)
    album(podcasts, "Sunday Sessions", ["Radio Sun"], ["Sunday Sessions 1"])
    hidden = LibraryFactory(name="Hidden")
    album(hidden, "Sunburst", ["Secret Sun Band"], ["Sunburst Secret"])
    listener = UserFactory()
    for library in (music, books, podcasts):
        LibraryAccessFactory(user=listener, library=library)
    client = APIClient()
    client.force_authenticate(listener)
    return {"listener": listener, "client": client, "hidden": hidden}


def found(client: APIClient, q: str, **params) -> dict[str, list[str]]:
    response = client.get("/api/v1/search", {"q": q, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    return {kind: [row.get("title", row.get("name")) for row in rows] for kind, rows in body.items() if rows}


def test_accents_and_case_are_ignored_both_ways(world):
    assert found(world["client"], "motorhead") == {
        "artists": ["Motörhead"],
        "tracks": ["Ace of Spades", "Love Me Like a Reptile"],  # by artist
    }
    assert found(world["client"], "MOTÖRHEAD")["artists"] == ["Motörhead"]
    assert found(world["client"], "sigur ros")["artists"] == ["Sigur Rós"]
    assert found(world["client"], "agaetis") == {"albums": ["Ágætis byrjun"]}  # its tracks: by the album's title
    tracks = world["client"].get("/api/v1/tracks", {"q": "agaetis"}).json()["results"]
    assert [track["title"] for track in tracks] == ["Svefn-g-englar", "Starálfur"]  # the list's q= does


def test_typos_are_forgiven(world):
    assert found(world["client"], "beetles")["artists"] == ["The Beatles"]
    assert found(world["client"], "motorhaed")["artists"] == ["Motörhead"]
    assert found(world["client"], "abey road")["albums"] == ["Abbey Road"]


def test_exact_then_prefix_then_word_prefix_then_similar(world):
    results = found(world["client"], "sun")
    # 'Sunny Afternoon' starts with it; 'Here Comes the Sun' has a word starting with it (and is longer).
    assert results["albums"] == ["Sunny Afternoon"]
    assert results["tracks"] == ["Sunny Afternoon", "Here Comes the Sun"]
    assert results["books"] == ["The Sun Also Rises"]
    assert results["shows"] == ["Sunday Sessions"]
    assert results["episodes"] == ["Sunday Sessions 1"]
    assert "artists" not in results  # 'Radio Sun' is a podcast's: artists are music's
    assert found(world["client"], "something")["tracks"] == ["Something"]


def test_what_the_user_may_not_see_is_never_found(world):
    assert found(world["client"], "sunburst") == {}
    assert found(world["client"], "secret sun") == {}
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    assert found(staff, "sunburst") == {"albums": ["Sunburst"], "tracks": ["Sunburst Secret"]}
    nobody = APIClient()
    nobody.force_authenticate(UserFactory())
    assert found(nobody, "sun") == {}


def test_like_wildcards_and_symbols_are_taken_literally(world):
    assert found(world["client"], "100%") == {"albums": ["100% Pure"], "tracks": ["100% Pure"]}
    assert found(world["client"], "%%") == {}
    assert found(world["client"], "__") == {}
    assert found(world["client"], "percent_b")["artists"] == ["Percent_Band"]
    assert found(world["client"], "p%d") == {}  # a LIKE 'p%d%' would find Percent_Band
    assert found(world["client"], "percent%b")["artists"] == ["Percent_Band"]  # as a typo, not a wildcard
    assert found(world["client"], "back\\s") == {"tracks": ["Back\\slash"]}
    assert found(world["client"], "\\\\") == {}
    assert found(world["client"], "!!! ???") == {}


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "This field may not be blank."),
        ("a", "Ensure the search text has at least 2 characters."),
        ("  a  ", "Ensure the search text has at least 2 characters."),
        ("x" * 201, "Ensure the search text has no more than 200 characters."),
        ("x" * 10_000, "Ensure the search text has no more than 200 characters."),
        ("ab\x00cd", "Null characters are not allowed."),
    ],
)
def test_bad_search_text_is_a_400_naming_the_field(world, q, message):
    response = world["client"].get("/api/v1/search", {"q": q})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"q": [message]}


def test_missing_q_and_bad_limit_are_400s(world):
    assert world["client"].get("/api/v1/search").json()["error"]["fields"] == {"q": ["This field is required."]}
    response = world["client"].get("/api/v1/search", {"q": "sun", "limit": 51})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"limit": ["Ensure this value is less than or equal to 50."]}


def test_search_term_is_checked_for_any_front_end():
    assert search_term("  Sigur \t Rós ") == SearchTerm("Sigur Rós")
    with pytest.raises(SearchTermInvalid, match="NUL"):
        search_term("ab\x00")
    with pytest.raises(SearchTermInvalid, match="at least 2"):
        search_term(" b ")


def test_limit_and_query_count(world, django_assert_num_queries):
    client = world["client"]
    # The libraries; a savepoint (inside the test's transaction) and its release; the settings; the albums
    # whose names may match; the artists; the albums' and shows' prefix tier (both filled); the tracks', the
    # episodes' and the books' prefix tier, then the word tier for the books ('The Sun Also Rises'); then the
    # albums' and the tracks' rows. Marks and covers come joined, not per row.
    with django_assert_num_queries(1 + 2 + 1 + 1 + 1 + 1 + 2 + 2):
        response = client.get("/api/v1/search", {"q": "sun", "limit": 1})
    assert response.status_code == 200
    assert {kind: len(rows) for kind, rows in response.json().items()} == {
        "artists": 0, "albums": 1, "tracks": 1, "shows": 1, "episodes": 1, "books": 1
    }  # fmt: skip


def test_the_selector_is_callable_without_http(world):
    results = search(user=world["listener"], term=search_term("beatles"), limit=5)
    assert results.artists == [{"name": "The Beatles", "album_count": 1}]
    assert [track.title for track in results.tracks] == ["Come Together", "Something", "Here Comes the Sun"]
    assert results.tracks[0].favourite_at is None and results.tracks[0].rating is None


def test_list_filters_use_the_same_matcher(world):
    client = world["client"]
    tracks = client.get("/api/v1/tracks", {"q": "motorhead"}).json()["results"]
    assert [row["title"] for row in tracks] == ["Ace of Spades", "Love Me Like a Reptile"]
    albums = client.get("/api/v1/albums", {"q": "abey road"}).json()["results"]
    assert [row["title"] for row in albums] == ["Abbey Road"]
    artists = client.get("/api/v1/artists", {"q": "sigur ros"}).json()["results"]
    assert [row["name"] for row in artists] == ["Sigur Rós"]
    short = client.get("/api/v1/tracks", {"q": "a"})
    assert short.status_code == 400
    assert short.json()["error"]["fields"] == {"q": ["Ensure the search text has at least 2 characters."]}


def plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask whether an index *can* serve it
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("q", ["ab", "beetles", "sigur r", "100%", "!!!"])
@pytest.mark.parametrize(
    ("table", "expression", "prefix_index"),
    [
        ("library_track", "search_title", True),
        ("library_track", "search_artists", False),
        ("library_album", "search_title", True),
        ("library_album", "search_names", False),
    ],
)
def test_every_query_shape_can_use_an_index(world, q, table, expression, prefix_index):
    term = search_term(q)
    where, params = match_sql((expression, []), term, prefix_index=prefix_index)
    explained = plan(f"SELECT id FROM {table} WHERE {where}", params)
    if where == "FALSE":
        assert "One-Time Filter: false" in explained
    else:
        assert "Seq Scan" not in explained
        assert "Index" in explained, explained


def test_tracks_are_found_by_their_artists_on_an_album_or_on_none(world):
    # On an album: through the album's names (search's tier 4), typo included; on none: the partial index.
    assert found(world["client"], "motorhaed") == {
        "artists": ["Motörhead"],
        "tracks": ["Ace of Spades", "Love Me Like a Reptile"],
    }
    assert found(world["client"], "hemingway") == {"books": ["The Sun Also Rises"]}
    assert found(world["client"], "ernest hemingwey") == {"books": ["The Sun Also Rises"]}


@pytest.mark.parametrize("q", ["ab", "beetles", "sigur r", "100%", "!!!"])
@pytest.mark.parametrize("tier", [TIER_PREFIX, TIER_WORD, TIER_SIMILAR])
@pytest.mark.parametrize(("table", "words_index"), [("library_track", True), ("library_album", False)])
def test_every_search_tier_can_use_an_index(world, q, tier, table, words_index):
    condition = tier_sql("search_title", search_term(q), tier, words_index=words_index)
    if condition is None:
        return  # the term cannot meet this tier (no word, or too short to be similar): not asked
    explained = plan(f"SELECT id FROM {table} WHERE {condition[0]}", condition[1])
    assert "Seq Scan" not in explained
    assert "Index" in explained, explained
    if tier == TIER_WORD and words_index:
        assert "library_track_search_title_words" in explained


def test_artist_names_are_kept_by_the_albums_writes_and_searched_on_their_indexes(world):
    music = Library.objects.get(name="Music")
    Album.objects.create(library=music, title="Kid A", album_artists=["Radiohead"], artists=["Radiohead", "Björk"])
    Album.objects.filter(title="Kid A").update(artists=["Radiohead", "Thom Yorke"])  # an update adds too
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM library_artistname WHERE name IN ('Radiohead', 'Björk', 'Thom Yorke')")
        assert sorted(row[0] for row in cursor.fetchall()) == ["Björk", "Radiohead", "Thom Yorke"]
    for q in ("radio", "bjork", "thom yorke", "radiohaed"):
        where, params = match_sql(("search_name", []), search_term(q))
        explained = plan(f"SELECT name FROM library_artistname WHERE {where}", params)
        assert "Seq Scan" not in explained and "Index" in explained, explained
