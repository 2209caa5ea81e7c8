"""Playlists: CRUD, entries added/removed/moved under If-Match versions, bounds, who sees what of a public
playlist, and M3U8 export and import (with every refused kind of file)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.collections import services
from apps.collections.models import Playlist, PlaylistEntry
from apps.library.models import Track
from tests.factories import AudioFileFactory, LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    shared = LibraryFactory(name="Shared", root="/srv/music")
    hidden = LibraryFactory(name="Hidden", root="/srv/secret")
    tracks = [
        TrackFactory(library=shared, title=title, group_key=f"Album/{title}.mp3", duration_ms=1000 * (n + 1))
        for n, title in enumerate(["A", "B", "C", "D"])
    ]
    secret = TrackFactory(library=hidden, title="Secret", group_key="Secret.mp3", duration_ms=50_000)
    for track in [*tracks, secret]:
        AudioFileFactory(track=track)
    owner = UserFactory(username="owner")
    LibraryAccessFactory(user=owner, library=shared)
    LibraryAccessFactory(user=owner, library=hidden)
    viewer = UserFactory(username="viewer")
    LibraryAccessFactory(user=viewer, library=shared)
    clients = {}
    for name, user in (("owner", owner), ("viewer", viewer)):
        clients[name] = APIClient()
        clients[name].force_authenticate(user)
    return {"tracks": tracks, "secret": secret, "owner_user": owner, **clients}


def ids(world, *titles: str) -> list[int]:
    by_title = {track.title: track.pk for track in [*world["tracks"], world["secret"]]}
    return [by_title[title] for title in titles]


def order(response) -> list[str]:
    assert response.status_code in (200, 201), response.content
    return [entry["track"]["title"] for entry in response.json()["entries"]]


def create(world, *titles: str, **extra) -> dict:
    response = world["owner"].post(
        "/api/v1/playlists", {"name": "Mix", "track_ids": ids(world, *titles), **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response["ETag"] == '"1"'
    return response.json()


def test_a_playlist_keeps_order_repeats_count_and_duration(world):
    body = create(world, "B", "A", "B")
    assert [(e["position"], e["track"]["title"]) for e in body["entries"]] == [(0, "B"), (1, "A"), (2, "B")]
    assert (body["track_count"], body["duration_ms"], body["version"], body["public"]) == (3, 5000, 1, False)
    assert body["owner"] == "owner"
    stored = Playlist.objects.get(pk=body["id"])
    assert (stored.track_count, stored.duration_ms) == (3, 5000)


def test_entries_are_added_removed_and_moved_by_position_with_versions(world):
    client, playlist = world["owner"], create(world, "A", "B", "C")
    url = f"/api/v1/playlists/{playlist['id']}"
    added = client.post(f"{url}/entries", {"track_ids": ids(world, "D", "A"), "position": 1}, format="json",
                        HTTP_IF_MATCH='"1"')  # fmt: skip
    assert order(added) == ["A", "D", "A", "B", "C"]
    assert added["ETag"] == '"2"'
    moved = client.post(f"{url}/entries/move", {"from_position": 3, "to_position": 0, "count": 2}, format="json",
                        HTTP_IF_MATCH='"2"')  # fmt: skip
    assert order(moved) == ["B", "C", "A", "D", "A"]
    removed = client.post(f"{url}/entries/remove", {"positions": [0, 4, 4]}, format="json", HTTP_IF_MATCH="3")
    assert order(removed) == ["C", "A", "D"]
    assert [e["position"] for e in removed.json()["entries"]] == [0, 1, 2]
    assert (removed.json()["track_count"], removed.json()["duration_ms"], removed["ETag"]) == (3, 8000, '"4"')
    appended = client.post(f"{url}/entries", {"track_ids": ids(world, "B")}, format="json")  # no If-Match: applied
    assert order(appended) == ["C", "A", "D", "B"]


def test_a_stale_version_is_a_409_and_changes_nothing(world):
    client, playlist = world["owner"], create(world, "A", "B")
    url = f"/api/v1/playlists/{playlist['id']}"
    assert (
        client.post(f"{url}/entries/remove", {"positions": [0]}, format="json", HTTP_IF_MATCH='"1"').status_code == 200
    )
    # A second device that read version 1 adds, moves, renames, deletes: all refused.
    for response in (
        client.post(f"{url}/entries", {"track_ids": ids(world, "C")}, format="json", HTTP_IF_MATCH='"1"'),
        client.post(f"{url}/entries/move", {"from_position": 0, "to_position": 0}, format="json", HTTP_IF_MATCH='"1"'),
        client.patch(url, {"name": "Other"}, format="json", HTTP_IF_MATCH='W/"1"'),
        client.delete(url, HTTP_IF_MATCH='"1"'),
    ):
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "version_conflict"
    current = client.get(url)
    assert (order(current), current.json()["name"], current["ETag"]) == (["B"], "Mix", '"2"')
    assert client.post(f"{url}/entries", {"track_ids": [1]}, format="json", HTTP_IF_MATCH="seven").status_code == 400


def test_bad_entries_are_400_or_404_and_nothing_is_added(world, monkeypatch):
    client, playlist = world["owner"], create(world, "A")
    url = f"/api/v1/playlists/{playlist['id']}"
    viewer = world["viewer"]
    mine = viewer.post("/api/v1/playlists", {"name": "Mine"}, format="json").json()
    # A track of a library the viewer has no grant for: 404, none of the list added.
    hidden = viewer.post(f"/api/v1/playlists/{mine['id']}/entries", {"track_ids": ids(world, "A", "Secret")},
                         format="json")  # fmt: skip
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "not_found"
    assert PlaylistEntry.objects.filter(playlist_id=mine["id"]).count() == 0
    too_many = client.post(f"{url}/entries", {"track_ids": [ids(world, "A")[0]] * 501}, format="json")
    assert too_many.status_code == 400
    assert list(too_many.json()["error"]["fields"]) == ["track_ids"]
    for path, body, field in (
        ("entries", {"track_ids": ids(world, "B"), "position": 2}, "position"),
        ("entries/remove", {"positions": [1]}, "positions"),
        ("entries/move", {"from_position": 0, "to_position": 1}, "to_position"),
        ("entries/move", {"from_position": 1, "to_position": 0}, "from_position"),
        ("entries", {"track_ids": []}, "track_ids"),
        ("entries", {"track_ids": ["x"]}, "track_ids"),
    ):
        response = client.post(f"{url}/{path}", body, format="json")
        assert response.status_code == 400, (path, body, response.content)
        assert list(response.json()["error"]["fields"]) == [field]
    monkeypatch.setattr("apps.collections.services.playlists.PLAYLIST_MAX_ENTRIES", 3)
    full = client.post(f"{url}/entries", {"track_ids": ids(world, "B", "C", "D")}, format="json")
    assert full.status_code == 400
    assert full.json()["error"]["message"] == "A playlist holds at most 3 entries."
    assert order(client.get(url)) == ["A"]
    assert Playlist.objects.get(pk=playlist["id"]).version == 1


def test_a_public_playlist_shows_each_viewer_only_what_they_may_see(world, django_assert_max_num_queries):
    owner, viewer = world["owner"], world["viewer"]
    public = create(world, "A", "Secret", "B", public=True)
    private = create(world, "C")
    assert order(owner.get(f"/api/v1/playlists/{public['id']}")) == ["A", "Secret", "B"]
    with django_assert_max_num_queries(4):  # the playlist, its entries, their tracks (+ marks)
        seen = viewer.get(f"/api/v1/playlists/{public['id']}")
    assert [(e["position"], e["track"]["title"]) for e in seen.json()["entries"]] == [(0, "A"), (2, "B")]
    with django_assert_max_num_queries(2):
        listed = viewer.get("/api/v1/playlists").json()["results"]
    assert [row["id"] for row in listed] == [public["id"]]
    assert viewer.get(f"/api/v1/playlists/{private['id']}").status_code == 404
    assert viewer.get(f"/api/v1/playlists/{private['id']}/m3u8").status_code == 404
    refused = viewer.post(f"/api/v1/playlists/{public['id']}/entries", {"track_ids": ids(world, "A")}, format="json")
    assert refused.status_code == 403
    assert viewer.delete(f"/api/v1/playlists/{private['id']}").status_code == 404
    assert Playlist.objects.count() == 2
    assert owner.patch(f"/api/v1/playlists/{public['id']}", {"public": False}, format="json").status_code == 200
    assert viewer.get(f"/api/v1/playlists/{public['id']}").status_code == 404


def test_export_writes_extended_m3u8_of_what_the_viewer_sees(world):
    Track.objects.filter(title="A").update(artists=["Ann", "Bo"], duration_ms=61_400)
    playlist = create(world, "A", "Secret", "B", public=True)
    response = world["viewer"].get(f"/api/v1/playlists/{playlist['id']}/m3u8")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/x-mpegurl; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="Mix.m3u8"'
    assert response.content.decode() == (
        "#EXTM3U\n#EXTINF:61,Ann, Bo - A\nAlbum/A.mp3\n#EXTINF:2,B artist - B\nAlbum/B.mp3\n"
    )


def upload(client, content: bytes, name: str = "road trip.m3u8", **extra):
    file = SimpleUploadedFile(name, content, content_type="audio/x-mpegurl")
    return client.post("/api/v1/playlists/import", {"file": file, **extra}, format="multipart")


def test_import_resolves_relative_and_absolute_paths_and_reports_the_rest(world):
    content = (
        "\ufeff#EXTM3U\r\n#EXTINF:1,x - A\r\nAlbum/A.mp3\r\n"
        "./Album/B.mp3\n/srv/music/Album/C.mp3\nAlbum\\D.mp3\n"
        "Album/Nope.mp3\nhttps://radio.example/stream\nSecret.mp3\n"
    ).encode()
    response = upload(world["viewer"], content)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["playlist"]["name"], body["playlist"]["track_count"]) == ("road trip", 4)
    assert body["unmatched"] == [
        {"line": 7, "path": "Album/Nope.mp3"},
        {"line": 8, "path": "https://radio.example/stream"},
        {"line": 9, "path": "Secret.mp3"},  # in a library the viewer has no grant for
    ]
    playlist = Playlist.objects.get(pk=body["playlist"]["id"])
    assert list(playlist.entries.order_by("position").values_list("track__title", flat=True)) == ["A", "B", "C", "D"]
    # And what it exports imports back to the same tracks.
    exported = world["viewer"].get(f"/api/v1/playlists/{playlist.pk}/m3u8").content
    again = upload(world["viewer"], exported, name="again.m3u8").json()
    assert (again["playlist"]["track_count"], again["unmatched"]) == (4, [])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Album/A.mp3\nAlbum/\x00B.mp3\n", "Line 2: The file contains a NUL byte."),
        (b"Album/A.mp3\n\xff\xfeB.mp3\n", "Line 2: The file is not UTF-8."),
        (b"#EXTM3U\nAlbum/../../etc/passwd\n", "Line 2: A path may not contain '..'."),
        (b"/etc/passwd\n", "Line 1: /etc/passwd is not inside any library you can see."),
        (b"/srv/secret/Secret.mp3\n", "Line 1: /srv/secret/Secret.mp3 is not inside any library you can see."),
        (b"C:\\Music\\A.mp3\n", "Line 1: C:/Music/A.mp3 is not inside any library you can see."),
    ],
)
def test_a_hostile_m3u8_is_a_400_naming_the_line_and_nothing_is_made(world, content, message):
    response = upload(world["viewer"], content)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": [message]}
    assert Playlist.objects.count() == 0


def test_a_huge_upload_is_refused(world):
    response = upload(world["viewer"], b"Album/A.mp3\n" * (50 * 1024 * 1024 // 12))
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["The file is larger than 1048576 bytes."]}
    just_over = upload(world["viewer"], b"#" * (1024 * 1024 + 1))
    assert just_over.json()["error"]["fields"] == {"file": ["The file is larger than 1048576 bytes."]}
    assert Playlist.objects.count() == 0


def test_the_services_serve_any_front_end(world):
    owner = world["owner_user"]
    playlist = services.playlist_create(owner=owner, name="Direct", track_ids=ids(world, "A", "B"))
    services.playlist_entries_move(user=owner, playlist_id=playlist.pk, from_position=1, to_position=0)
    playlist = services.playlist_entries_add(user=owner, playlist_id=playlist.pk, track_ids=ids(world, "Secret"))
    titles = list(playlist.entries.order_by("position").values_list("track__title", flat=True))
    assert (titles, playlist.version, playlist.track_count) == (["B", "A", "Secret"], 3, 3)


def test_repair_after_entries_went_without_the_services(world):
    owner = world["owner_user"]
    playlist = services.playlist_create(owner=owner, name="Mix", track_ids=ids(world, "A", "B", "C", "D"))
    untouched = services.playlist_create(owner=owner, name="Other", track_ids=ids(world, "D"))
    Track.objects.filter(title="B").delete()  # its entry goes by CASCADE, as with a deleted library
    Track.objects.filter(title="D").update(duration_ms=10_000)
    assert services.playlists_repair(playlist_ids=[playlist.pk, untouched.pk]) == 2
    playlist.refresh_from_db()
    rows = list(playlist.entries.order_by("position").values_list("position", "track__title"))
    assert (rows, playlist.track_count, playlist.duration_ms, playlist.version) == (
        [(0, "A"), (1, "C"), (2, "D")],
        3,
        1000 + 3000 + 10_000,
        2,
    )
    untouched.refresh_from_db()
    assert (untouched.duration_ms, untouched.version) == (10_000, 2)
    assert services.playlists_repair(playlist_ids=[playlist.pk, untouched.pk]) == 0
