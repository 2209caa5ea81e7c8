"""Favourites and ratings: the services, the PUT/DELETE endpoints, and the marks every track and album list
and detail payload carries (one query, filters and orderings on them)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from apps.collections import selectors, services
from apps.collections.models import AlbumMark, ArtistMark, TrackMark
from apps.collections.types import Artist, MarkState
from apps.library.models import Album, LibraryAccess
from apps.ops.errors import DomainError
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    shared = LibraryFactory(name="Shared")
    hidden = LibraryFactory(name="Hidden")
    album = Album.objects.create(library=shared, title="Highway to Hell", track_count=3, duration_ms=600_000)
    tracks = [
        TrackFactory(library=shared, album=album, title=title, artists=["AC/DC"], track_number=number)
        for number, title in enumerate(["Highway to Hell", "Girls Got Rhythm", "Walk All Over You"], start=1)
    ]
    secret = TrackFactory(library=hidden, title="Secret", artists=["Nobody Known"])
    listener = UserFactory()
    LibraryAccessFactory(user=listener, library=shared)
    other = UserFactory()
    LibraryAccessFactory(user=other, library=shared)
    client = APIClient()
    client.force_authenticate(listener)
    return {
        "shared": shared,
        "album": album,
        "tracks": tracks,
        "secret": secret,
        "listener": listener,
        "other": other,
        "client": client,
    }


def test_a_star_keeps_its_first_time_and_unstarring_keeps_the_rating(world):
    client, track = world["client"], world["tracks"][0]
    first = client.put(f"/api/v1/tracks/{track.pk}/favourite")
    assert first.status_code == 200, first.content
    assert first.json()["rating"] is None and first.json()["favourite_at"] is not None
    again = client.put(f"/api/v1/tracks/{track.pk}/favourite")
    assert again.json() == first.json()

    rated = client.put(f"/api/v1/tracks/{track.pk}/rating", {"rating": 4}, format="json")
    assert rated.json() == {"favourite_at": first.json()["favourite_at"], "rating": 4}
    unstarred = client.delete(f"/api/v1/tracks/{track.pk}/favourite")
    assert unstarred.status_code == 200
    assert unstarred.json() == {"favourite_at": None, "rating": 4}
    cleared = client.put(f"/api/v1/tracks/{track.pk}/rating", {"rating": None}, format="json")
    assert cleared.json() == {"favourite_at": None, "rating": None}
    assert TrackMark.objects.count() == 0  # nothing left on it: the row is gone


def test_the_services_take_any_item_and_a_star_time(world):
    listener = world["listener"]
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    state = services.favourite_set(user=listener, item=world["album"], favourite=True, at=at)
    assert state == MarkState(favourite_at=at, rating=None)
    assert services.rating_set(user=listener, item=Artist(name="AC/DC"), rating=5) == MarkState(None, 5)
    assert selectors.mark_get(user=listener, item=world["album"]) == MarkState(at, None)
    assert selectors.mark_get(user=world["other"], item=world["album"]) == MarkState(None, None)
    with pytest.raises(DomainError) as raised:
        services.rating_set(user=listener, item=world["album"], rating=6)
    assert raised.value.fields == {"rating": ["Must be from 1 to 5, or null."]}
    assert services.favourite_set(user=listener, item=world["tracks"][0], favourite=False) == MarkState(None, None)
    assert (AlbumMark.objects.count(), ArtistMark.objects.count(), TrackMark.objects.count()) == (1, 1, 0)


@pytest.mark.parametrize("body", [{"rating": 0}, {"rating": 6}, {"rating": "high"}, {"rating": 3.5}, {}])
def test_a_bad_rating_is_a_400_naming_the_field_and_changes_nothing(world, body):
    track = world["tracks"][0]
    response = world["client"].put(f"/api/v1/tracks/{track.pk}/rating", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["rating"]
    assert TrackMark.objects.count() == 0


def test_what_the_user_may_not_see_is_a_404_and_nothing_is_marked(world):
    client = world["client"]
    assert client.put(f"/api/v1/tracks/{world['secret'].pk}/favourite").status_code == 404
    assert client.put(f"/api/v1/tracks/{world['secret'].pk}/rating", {"rating": 3}, format="json").status_code == 404
    assert client.put("/api/v1/artists/Nobody%20Known/favourite").status_code == 404
    assert client.put("/api/v1/albums/999999/favourite").status_code == 404
    assert (TrackMark.objects.count(), ArtistMark.objects.count()) == (0, 0)
    assert APIClient().put(f"/api/v1/tracks/{world['tracks'][0].pk}/favourite").status_code in (401, 403)


def test_artists_are_marked_by_name_even_with_a_slash(world):
    client = world["client"]
    response = client.put(f"/api/v1/artists/{quote('AC/DC', safe='')}/favourite")
    assert response.status_code == 200, response.content
    assert client.put("/api/v1/artists/AC/DC/rating", {"rating": 5}, format="json").json()["rating"] == 5
    starred = client.get("/api/v1/favourites/artists").json()
    assert [(row["name"], row["rating"]) for row in starred["results"]] == [("AC/DC", 5)]
    # Once no track the user may see credits the name, it is not listed (the mark stays for a new grant).
    LibraryAccess.objects.filter(user=world["listener"]).delete()
    assert client.get("/api/v1/favourites/artists").json()["results"] == []
    assert ArtistMark.objects.filter(name="AC/DC").count() == 1


def test_lists_and_details_carry_the_callers_marks_in_one_query(world, django_assert_max_num_queries):
    listener, other, client = world["listener"], world["other"], world["client"]
    first, second, third = world["tracks"]
    at = datetime(2026, 3, 1, tzinfo=UTC)
    services.favourite_set(user=listener, item=first, favourite=True, at=at)
    services.rating_set(user=listener, item=second, rating=2)
    services.rating_set(user=other, item=third, rating=5)  # someone else's: never shown to the listener
    services.favourite_set(user=listener, item=world["album"], favourite=True, at=at)
    for number in range(40):
        TrackFactory(library=world["shared"], title=f"Filler {number:02}")

    with django_assert_max_num_queries(2):  # the page and its count
        rows = client.get("/api/v1/tracks?page_size=100").json()["results"]
    marks = {row["title"]: (row["favourite_at"], row["rating"]) for row in rows}
    assert marks["Highway to Hell"] == ("2026-03-01T00:00:00Z", None)
    assert marks["Girls Got Rhythm"] == (None, 2)
    assert marks["Walk All Over You"] == (None, None)
    assert marks["Filler 00"] == (None, None)

    detail = client.get(f"/api/v1/tracks/{first.pk}").json()
    assert (detail["favourite_at"], detail["rating"]) == ("2026-03-01T00:00:00Z", None)
    with django_assert_max_num_queries(2):
        albums = client.get("/api/v1/albums").json()["results"]
    assert [(a["title"], a["favourite_at"], a["rating"]) for a in albums] == [
        ("Highway to Hell", "2026-03-01T00:00:00Z", None)
    ]
    with django_assert_max_num_queries(3):  # the album, its tracks
        album = client.get(f"/api/v1/albums/{world['album'].pk}").json()
    assert [(t["title"], t["rating"]) for t in album["tracks"]] == [
        ("Highway to Hell", None),
        ("Girls Got Rhythm", 2),
        ("Walk All Over You", None),
    ]
    assert album["favourite_at"] == "2026-03-01T00:00:00Z"


def test_lists_filter_and_order_by_the_marks(world):
    listener, client = world["listener"], world["client"]
    first, second, third = world["tracks"]
    services.favourite_set(user=listener, item=first, favourite=True, at=datetime(2026, 1, 1, tzinfo=UTC))
    services.favourite_set(user=listener, item=third, favourite=True, at=datetime(2026, 2, 1, tzinfo=UTC))
    services.rating_set(user=listener, item=second, rating=3)
    services.rating_set(user=listener, item=third, rating=5)
    services.rating_set(user=world["other"], item=first, rating=5)

    def titles(query: str) -> list[str]:
        response = client.get(f"/api/v1/tracks?{query}")
        assert response.status_code == 200, response.content
        return [row["title"] for row in response.json()["results"]]

    assert titles("favourite=true&ordering=-favourited") == ["Walk All Over You", "Highway to Hell"]
    assert titles("favourite=false") == ["Girls Got Rhythm"]
    assert titles("rating_min=4") == ["Walk All Over You"]
    # Unrated last whichever the direction.
    assert titles("ordering=-rating") == ["Walk All Over You", "Girls Got Rhythm", "Highway to Hell"]
    assert titles("ordering=rating") == ["Girls Got Rhythm", "Walk All Over You", "Highway to Hell"]
    assert client.get("/api/v1/tracks?rating_min=9").status_code == 400
    assert client.get("/api/v1/albums?favourite=true").json()["count"] == 0
