"""Library API: grants, filters, search, ordering, pagination, query counts, error format."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.library.models import LibraryKind, ScanJob, ScanStatus, Track
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.pipeline import scan, scan_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path):
    """Two libraries; `listener` is granted only the first."""
    music = tmp_path / "music"
    for number, (title, artist, album, genre, year) in enumerate(
        [
            ("Blue Train", "John Coltrane", "Blue Train", "Jazz", "1957"),
            ("Moment's Notice", "John Coltrane", "Blue Train", "Jazz", "1957"),
            ("So What", "Miles Davis; John Coltrane", "Kind of Blue", "Jazz; Modal", "1959"),
            ("Windowlicker", "Aphex Twin", "Windowlicker", "Electronic", "1999"),
        ],
        start=1,
    ):
        make_audio(
            music / album / f"{number:02} {title}.mp3",
            seconds=1 + number * 0.25,
            tags={"title": title, "artist": artist, "album": album, "genre": genre, "date": year, "track": str(number)},
        )
    private = tmp_path / "private"
    make_audio(private / "Secret Show" / "ep.mp3", seconds=1, tags={"title": "Secret episode", "album": "Secret Show"})
    shared = LibraryFactory(root=music, name="Shared music")
    hidden = LibraryFactory(root=private, kind=LibraryKind.PODCAST, name="Private podcasts")
    scan_job(shared)
    scan_job(hidden)
    listener = UserFactory()
    LibraryAccessFactory(user=listener, library=shared)
    client = APIClient()
    client.force_authenticate(listener)
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    return {"shared": shared, "hidden": hidden, "listener": listener, "client": client, "staff": staff}


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


def test_libraries_are_listed_by_grant_and_staff_see_all(world):
    mine = world["client"].get("/api/v1/libraries").json()
    assert [(lib["name"], lib["track_count"]) for lib in mine["results"]] == [("Shared music", 4)]
    assert "root_paths" not in mine["results"][0]
    assert mine["results"][0]["last_scan"]["status"] == "succeeded"

    everything = world["staff"].get("/api/v1/libraries").json()["results"]
    assert [lib["name"] for lib in everything] == ["Private podcasts", "Shared music"]
    assert everything[0]["root_paths"] == list(world["hidden"].root_paths)


def test_without_a_grant_everything_in_a_library_is_404_and_unlisted(world):
    client, hidden = world["client"], world["hidden"]
    secret = Track.objects.get(library=hidden)
    job = ScanJob.objects.filter(library=hidden).first()

    for url in (
        f"/api/v1/libraries/{hidden.pk}",
        f"/api/v1/tracks/{secret.pk}",
        f"/api/v1/albums/{secret.album_id}",
        f"/api/v1/scans/{job.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert client.post(f"/api/v1/libraries/{hidden.pk}/scan").status_code == 404
    assert "Secret episode" not in titles(client.get("/api/v1/tracks"))
    assert "Secret episode" not in titles(client.get("/api/v1/tracks", {"library": hidden.pk}))
    assert titles(client.get("/api/v1/tracks", {"library": hidden.pk})) == []
    assert "Secret Show" not in titles(client.get("/api/v1/albums"))
    assert world["staff"].get(f"/api/v1/tracks/{secret.pk}").status_code == 200


def test_track_filters(world):
    client, shared = world["client"], world["shared"]
    kind_of_blue = Track.objects.get(title="So What").album_id

    assert titles(client.get("/api/v1/tracks", {"artist": "John Coltrane"})) == [
        "Blue Train",
        "Moment's Notice",
        "So What",
    ]
    assert titles(client.get("/api/v1/tracks", {"artist": "John"})) == []  # a whole name, not a part
    assert titles(client.get("/api/v1/tracks", {"genre": "Modal"})) == ["So What"]
    assert titles(client.get("/api/v1/tracks", {"album": kind_of_blue})) == ["So What"]
    assert len(titles(client.get("/api/v1/tracks", {"library": shared.pk}))) == 4
    assert titles(client.get("/api/v1/tracks", {"q": "miles"})) == ["So What"]  # artist
    assert titles(client.get("/api/v1/tracks", {"q": "WINDOW"})) == ["Windowlicker"]  # title
    assert titles(client.get("/api/v1/tracks", {"q": "kind of"})) == ["So What"]  # album
    assert titles(client.get("/api/v1/tracks", {"q": "100%_"})) == []


def test_track_ordering_and_pagination(world):
    client = world["client"]
    assert titles(client.get("/api/v1/tracks", {"ordering": "-duration"})) == [
        "Windowlicker",
        "So What",
        "Moment's Notice",
        "Blue Train",
    ]
    assert titles(client.get("/api/v1/tracks", {"ordering": "year,title"}))[-1] == "Windowlicker"

    page = client.get("/api/v1/tracks", {"page_size": 3, "page": 2}).json()
    assert page["count"] == 4 and page["previous"] and page["next"] is None
    assert [row["title"] for row in page["results"]] == ["Windowlicker"]


def test_bad_filters_are_400_with_field_messages(world):
    client = world["client"]
    for params, field in (
        ({"library": "abc"}, "library"),
        ({"album": "1.5"}, "album"),
        ({"ordering": "password"}, "ordering"),
    ):
        response = client.get("/api/v1/tracks", params)
        assert response.status_code == 400, params
        body = response.json()["error"]
        assert body["code"] == "invalid" and list(body["fields"]) == [field]
    assert client.get("/api/v1/tracks", {"page": 99}).json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/artists", {"library": "x"}).json()["error"]["fields"]["library"]


def test_track_detail_has_files_chapters_and_tags(world):
    track = Track.objects.get(title="So What")

    body = world["client"].get(f"/api/v1/tracks/{track.pk}").json()

    assert body["artists"] == ["Miles Davis", "John Coltrane"]
    assert body["genres"] == ["Jazz", "Modal"]
    assert body["album"] == {"id": track.album_id, "title": "Kind of Blue"}
    assert body["year"] == 1959 and body["track_number"] == 3
    assert [(f["codec"], f["missing"], f["error"]) for f in body["files"]] == [("mp3", False, "")]
    assert body["files"][0]["path"].endswith("03 So What.mp3")
    assert body["tags"]["title"] == ["So What"]
    assert body["chapters"] == []


def test_albums_with_tracks_in_order(world):
    client = world["client"]
    albums = client.get("/api/v1/albums").json()["results"]
    assert [(a["title"], a["track_count"]) for a in albums] == [
        ("Blue Train", 2),
        ("Kind of Blue", 1),
        ("Windowlicker", 1),
    ]
    blue_train = next(a for a in albums if a["title"] == "Blue Train")
    detail = client.get(f"/api/v1/albums/{blue_train['id']}").json()
    assert [t["title"] for t in detail["tracks"]] == ["Blue Train", "Moment's Notice"]
    assert titles(client.get("/api/v1/albums", {"artist": "Aphex Twin"})) == ["Windowlicker"]


def test_artists_and_genres_with_counts(world):
    client = world["client"]
    artists = client.get("/api/v1/artists").json()["results"]
    assert artists == [
        {"name": "Aphex Twin", "track_count": 1, "album_count": 1},
        {"name": "John Coltrane", "track_count": 3, "album_count": 2},
        {"name": "Miles Davis", "track_count": 1, "album_count": 1},
    ]
    genres = client.get("/api/v1/genres", {"q": "jaz"}).json()["results"]
    assert genres == [{"name": "Jazz", "track_count": 3, "album_count": 2}]
    staff_genres = [g["name"] for g in world["staff"].get("/api/v1/genres").json()["results"]]
    assert staff_genres == ["Electronic", "Jazz", "Modal"]  # the podcast has no genre


def test_track_list_query_count_does_not_grow_with_rows(world, django_assert_max_num_queries, tmp_path):
    client = world["client"]
    with django_assert_max_num_queries(4) as few:
        client.get("/api/v1/tracks")
    more = tmp_path / "music" / "More"
    for n in range(12):
        make_audio(more / f"{n}.mp3", seconds=1, tags={"title": f"Extra {n}", "album": f"Album {n}"})
    scan(world["shared"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/tracks")
    assert response.json()["count"] == 16


def test_scan_endpoint_is_for_staff(world, django_capture_on_commit_callbacks):
    shared = world["shared"]
    refused = world["client"].post(f"/api/v1/libraries/{shared.pk}/scan")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    before = ScanJob.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        response = world["staff"].post(f"/api/v1/libraries/{shared.pk}/scan")
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["library"], job["trigger"]) == ("queued", shared.pk, "manual")
    assert len(callbacks) == 1  # the task is sent once the job row is committed
    again = world["staff"].post(f"/api/v1/libraries/{shared.pk}/scan").json()
    assert again["id"] == job["id"]  # one active scan per library
    assert ScanJob.objects.count() == before + 1
    assert world["client"].get(f"/api/v1/scans/{job['id']}").json()["status"] == ScanStatus.QUEUED
