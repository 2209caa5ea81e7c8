"""Smart playlists: the rule schema (every bad rule a 400 naming its node), the compiled query (one, exact
rows for each field and operator, only tracks the user may see), built-ins, preview, CRUD."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.collections import selectors, services
from apps.collections.models import SmartPlaylist
from apps.collections.smart_rules import RuleError, rules_parse
from apps.library.models import Album, LibraryKind, Track
from apps.playback.models import PlaybackProgress
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def world():
    music = LibraryFactory(name="Music")
    books = LibraryFactory(name="Books", kind=LibraryKind.AUDIOBOOK)
    hidden = LibraryFactory(name="Hidden")
    blue = Album.objects.create(library=music, title="Kind of Blue", track_count=2)
    rows = [
        # title, library, artists, genres, year, seconds, days since added
        ("So What", music, ["Miles Davis"], ["Jazz", "Modal"], 1959, 545, 400, blue),
        ("Blue in Green", music, ["Miles Davis", "Bill Evans"], ["Jazz"], 1959, 337, 3, blue),
        ("Windowlicker", music, ["Aphex Twin"], ["Electronic"], 1999, 366, 10, None),
        ("100% Pure", music, ["Smilers"], ["Pop"], 2005, 180, 2, None),
        ("Dune", books, ["Frank Herbert"], ["Sci-Fi"], 1965, 75_000, 50, None),
        ("Emma", books, ["Jane Austen"], [], None, 60_000, 60, None),
        ("Secret Jazz", hidden, ["Miles Davis"], ["Jazz"], 1959, 300, 1, None),
    ]
    tracks = {}
    for title, library, artists, genres, year, seconds, age_days, album in rows:
        track = TrackFactory(
            library=library, title=title, artists=artists, genres=genres, year=year, duration_ms=seconds * 1000,
            album=album,
        )  # fmt: skip
        Track.objects.filter(pk=track.pk).update(created_at=NOW - dt.timedelta(days=age_days))
        tracks[title] = track
    user = UserFactory()
    for library in (music, books):
        LibraryAccessFactory(user=user, library=library)
    other = UserFactory()
    LibraryAccessFactory(user=other, library=music)

    def played(who, title, *, count, position_ms, completed, days_ago):
        at = NOW - dt.timedelta(days=days_ago)
        PlaybackProgress.objects.create(
            user=who, track=tracks[title], position_ms=position_ms, duration_ms=1, completed=completed,
            play_count=count, device_id="d", client_updated_at=at, updated_at=at,
        )  # fmt: skip

    played(user, "So What", count=5, position_ms=0, completed=False, days_ago=1)
    played(user, "Windowlicker", count=2, position_ms=1000, completed=True, days_ago=20)
    played(user, "Dune", count=0, position_ms=3_600_000, completed=False, days_ago=2)
    played(user, "Emma", count=1, position_ms=60_000_000, completed=True, days_ago=30)
    played(other, "Blue in Green", count=9, position_ms=0, completed=False, days_ago=1)
    services.rating_set(user=user, item=tracks["Blue in Green"], rating=5)
    services.rating_set(user=user, item=tracks["Windowlicker"], rating=2)
    services.favourite_set(user=user, item=tracks["100% Pure"], favourite=True)
    services.favourite_set(user=other, item=tracks["So What"], favourite=True)
    client = APIClient()
    client.force_authenticate(user)
    return {"user": user, "other": other, "client": client, "tracks": tracks, "books": books}


def titles(world, rules, user=None) -> list[str]:
    return [t.title for t in selectors.smart_playlist_tracks(user=user or world["user"], rules=rules)]


def cond(field, op, value) -> dict:
    return {"field": field, "op": op, "value": value}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"all": [cond("genre", "is", "Jazz"), cond("year", "between", [1955, 1960])]}, ["Blue in Green", "So What"]),
        ({"all": [cond("artist", "starts_with", "bill")]}, ["Blue in Green"]),
        ({"all": [cond("artist", "contains", "ILE")], "order": "title"}, ["100% Pure", "Blue in Green", "So What"]),
        ({"all": [cond("artist", "is", "Miles")]}, []),
        ({"all": [cond("artist", "contains", "MÍLES")]}, ["Blue in Green", "So What"]),  # as search matches
        ({"all": [cond("title", "starts_with", "blüe in")]}, ["Blue in Green"]),
        ({"all": [cond("title", "contains", "%")]}, ["100% Pure"]),
        ({"all": [cond("title", "contains", ".*")]}, []),
        ({"all": [cond("title", "starts_with", "_")]}, []),
        ({"all": [cond("title", "is", "so what")]}, ["So What"]),
        ({"all": [cond("album", "contains", "blue")]}, ["Blue in Green", "So What"]),
        ({"any": [cond("genre", "starts_with", "elec"), cond("year", "lt", 1960)]},
         ["Blue in Green", "So What", "Windowlicker"]),
        ({"all": [cond("duration", "gt", 1000)], "order": "-duration"}, ["Dune", "Emma"]),
        ({"all": [cond("duration", "between", [300, 400])]}, ["Blue in Green", "Windowlicker"]),
        ({"all": [cond("added", "in_the_last", 7)], "order": "-added"}, ["100% Pure", "Blue in Green"]),
        ({"all": [cond("added", "lt", (NOW - dt.timedelta(days=100)).date().isoformat())]}, ["So What"]),
        ({"all": [cond("last_played", "in_the_last", 7)], "order": "last_played"}, ["Dune", "So What"]),
        ({"all": [cond("play_count", "gt", 0)], "order": "-play_count"}, ["So What", "Windowlicker", "Emma"]),
        ({"all": [cond("play_count", "is", 0), cond("kind", "is", "music")]}, ["100% Pure", "Blue in Green"]),
        ({"all": [cond("rating", "gt", 3)]}, ["Blue in Green"]),
        ({"all": [cond("rating", "is", 0), cond("kind", "is", "music")]}, ["100% Pure", "So What"]),
        ({"all": [cond("favourite", "is", True)]}, ["100% Pure"]),
        # Conditions a track without the user's row meets too (as NOT IN their other rows): a star only
        # is a rating of 0, another user's plays are not theirs.
        ({"all": [cond("favourite", "is", False), cond("kind", "is", "music")]},
         ["Blue in Green", "So What", "Windowlicker"]),
        ({"all": [cond("rating", "lt", 3), cond("kind", "is", "music")]}, ["100% Pure", "So What", "Windowlicker"]),
        ({"all": [cond("rating", "between", [2, 5])]}, ["Blue in Green", "Windowlicker"]),
        ({"all": [cond("play_count", "between", [0, 1]), cond("kind", "is", "music")]},
         ["100% Pure", "Blue in Green"]),
        ({"all": [cond("play_count", "lt", 3), cond("kind", "is", "audiobook")]}, ["Dune", "Emma"]),
        ({"any": [cond("play_count", "is", 0), cond("rating", "gt", 4)], "order": "-rating"},
         ["Blue in Green", "100% Pure", "Dune"]),
        ({"all": [cond("in_progress", "is", True)]}, ["Dune"]),
        ({"all": [cond("in_progress", "is", False), cond("kind", "is", "audiobook")]}, ["Emma"]),
        ({"all": [cond("kind", "is", "audiobook")], "order": "-title", "limit": 1}, ["Emma"]),
        ({"all": [{"any": [{"all": [cond("genre", "is", "Jazz")]}]}], "order": "-rating"},
         ["Blue in Green", "So What"]),
    ],
)  # fmt: skip
def test_each_field_and_operator_selects_exactly(world, rules, expected):
    got = titles(world, rules)
    assert (got if "order" in rules else sorted(got)) == expected


def test_only_tracks_the_user_may_see_and_only_their_own_marks_and_plays(world):
    jazz = {"all": [cond("genre", "is", "Jazz")]}
    assert sorted(titles(world, jazz)) == ["Blue in Green", "So What"]  # not "Secret Jazz"
    other = world["other"]
    assert titles(world, {"all": [cond("favourite", "is", True)]}, user=other) == ["So What"]
    assert titles(world, {"all": [cond("play_count", "gt", 0)]}, user=other) == ["Blue in Green"]
    assert titles(world, {"all": [cond("kind", "is", "audiobook")]}, user=other) == []


def test_a_smart_playlist_is_one_query_and_its_rows(world, django_assert_num_queries):
    rules = {
        "all": [
            cond("artist", "contains", "a"),
            cond("genre", "starts_with", "j"),
            cond("play_count", "lt", 10),
            cond("rating", "between", [0, 5]),
            {"any": [cond("in_progress", "is", False), cond("added", "in_the_last", 900)]},
        ],
        "order": "-last_played",
        "limit": 10,
    }
    tracks = selectors.smart_playlist_tracks(user=world["user"], rules=rules)
    with django_assert_num_queries(2):  # the rules choose the ids; their rows, with marks, by primary key
        rows = tracks[0:50]
    with django_assert_num_queries(1):
        assert tracks.count() == 2
    assert [(t.title, t.rating) for t in rows] == [("So What", None), ("Blue in Green", 5)]


@pytest.mark.parametrize(
    ("rules", "path"),
    [
        ([], "rules"),
        ({"all": [cond("colour", "is", "red")]}, "rules.all[0].field"),
        ({"all": [cond("year", "contains", "19")]}, "rules.all[0].op"),
        ({"all": [cond("year", "is", "1959")]}, "rules.all[0].value"),
        ({"all": [cond("year", "between", [1990, 1980])]}, "rules.all[0].value"),
        ({"all": [cond("added", "between", ["2020-01-01", "soon"])]}, "rules.all[0].value[1]"),
        ({"all": [cond("added", "in_the_last", 10**9)]}, "rules.all[0].value"),
        ({"all": [cond("title", "contains", "x" * 201)]}, "rules.all[0].value"),
        ({"all": [cond("title", "contains", "a\x1fb")]}, "rules.all[0].value"),
        ({"all": [cond("kind", "is", "video")]}, "rules.all[0].value"),
        ({"all": [cond("rating", "is", 6)]}, "rules.all[0].value"),
        ({"all": [{"field": "title", "op": "is"}]}, "rules.all[0].value"),
        ({"all": [{**cond("title", "is", "x"), "regex": ".*"}]}, "rules.all[0].regex"),
        ({"all": [], "limit": 10**9}, "rules.limit"),
        ({"all": [], "limit": 0}, "rules.limit"),
        ({"all": [], "order": "colour"}, "rules.order"),
        ({"all": [], "order": "--added"}, "rules.order"),
        ({"all": [], "where": 1}, "rules.where"),
        ({"all": [], "any": []}, "rules"),
        ({"all": [{"any": [{"all": [{"any": [{"all": [{"any": []}]}]}]}]}]},
         "rules.all[0].any[0].all[0].any[0].all[0].any"),
        ({"all": [cond("year", "is", 1)] * 101}, "rules.all[100]"),
        ({"all": [{"all": [], "nope": 1}]}, "rules.all[0].nope"),
        ({"all": "everything"}, "rules.all"),
        ({"all": [7]}, "rules.all[0]"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_a_400_naming_its_node_and_nothing_is_stored(world, rules, path):
    with pytest.raises(RuleError) as raised:
        rules_parse(rules)
    assert raised.value.path == path
    response = world["client"].post("/api/v1/smart-playlists", {"name": "Bad", "rules": rules}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == [path]
    assert SmartPlaylist.objects.count() == 0


def test_a_hostile_body_nested_a_thousand_deep_is_a_400(world):
    body = '{"name": "x", "rules": ' + '{"all": [' * 1000 + "]}" * 1000 + "}"
    response = world["client"].post("/api/v1/smart-playlists", body, content_type="application/json")
    assert response.status_code == 400
    preview_body = '{"rules": ' + '{"all": [' * 1000 + "]}" * 1000 + "}"
    preview = world["client"].post("/api/v1/smart-playlists/preview", preview_body, content_type="application/json")
    assert preview.status_code == 400
    assert SmartPlaylist.objects.count() == 0


def test_smart_playlists_through_the_api(world):
    client = world["client"]
    rules = {"all": [cond("genre", "is", "Jazz")], "order": "title"}
    created = client.post("/api/v1/smart-playlists", {"name": "Jazz", "rules": rules}, format="json")
    assert created.status_code == 201, created.content
    smart_id = created.json()["id"]
    tracks = client.get(f"/api/v1/smart-playlists/{smart_id}/tracks").json()
    assert [(t["title"], t["rating"]) for t in tracks["results"]] == [("Blue in Green", 5), ("So What", None)]
    bad = client.patch(f"/api/v1/smart-playlists/{smart_id}", {"rules": {"all": [cond("x", "is", 1)]}}, format="json")
    assert bad.status_code == 400
    assert SmartPlaylist.objects.get(pk=smart_id).rules == rules
    renamed = client.patch(f"/api/v1/smart-playlists/{smart_id}", {"name": "Cool"}, format="json")
    assert renamed.json()["name"] == "Cool"
    stranger = APIClient()
    stranger.force_authenticate(world["other"])
    assert stranger.get(f"/api/v1/smart-playlists/{smart_id}/tracks").status_code == 404
    assert stranger.delete(f"/api/v1/smart-playlists/{smart_id}").status_code == 404
    preview = client.post("/api/v1/smart-playlists/preview", {"rules": {"all": [cond("year", "lt", 2000)]}},
                          format="json")  # fmt: skip
    assert preview.status_code == 200
    assert (preview.json()["count"], len(preview.json()["tracks"])) == (4, 4)
    assert client.delete(f"/api/v1/smart-playlists/{smart_id}").status_code == 204
    assert SmartPlaylist.objects.count() == 0


def test_the_builtins(world):
    client = world["client"]
    listed = client.get("/api/v1/smart-playlists/builtin").json()
    assert [b["slug"] for b in listed] == [
        "recently-added", "most-played", "never-played", "favourites", "books-in-progress"
    ]  # fmt: skip

    def builtin(slug):
        response = client.get(f"/api/v1/smart-playlists/builtin/{slug}/tracks")
        assert response.status_code == 200, response.content
        return [t["title"] for t in response.json()["results"]]

    assert builtin("recently-added") == ["100% Pure", "Blue in Green", "Windowlicker"]
    assert builtin("most-played") == ["So What", "Windowlicker", "Emma"]
    assert builtin("never-played") == ["100% Pure", "Blue in Green"]
    assert builtin("favourites") == ["100% Pure"]
    assert builtin("books-in-progress") == ["Dune"]
    assert client.get("/api/v1/smart-playlists/builtin/nope/tracks").status_code == 404
