"""Stars, ratings, playlists and covers through /rest/, over apps.collections and the artwork of
apps.library: the same rows the REST API reads, checked against the schemas in JSON and XML."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from PIL import Image

from apps.collections.models import AlbumMark, ArtistMark, Playlist, TrackMark
from apps.library.models import Album, Artwork, Track
from apps.library.tasks import artwork_variants_task
from tests.artwork import embed, image_bytes
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.pipeline import scan
from tests.subsonic.conftest import PASSWORD
from tests.subsonic.schemas import check, check_xml

pytestmark = pytest.mark.django_db


def call(method: str, *, fmt: str = "json", user: str = "listener", **params) -> dict:
    response = Client().get(f"/rest/{method}", {"u": user, "p": PASSWORD, "c": "t", "f": fmt, **params})
    return check_xml(response.content) if fmt == "xml" else check(json.loads(response.content))


def both(method: str, **params) -> dict:
    as_json = call(method, **params)
    as_xml = call(method, fmt="xml", **params)
    assert as_json["status"] == as_xml["status"], (as_json, as_xml)
    return as_json


def code(answer: dict) -> int | None:
    return answer["error"]["code"] if answer["status"] == "failed" else None


@pytest.fixture
def world(tmp_path):
    media, hidden = tmp_path / "music", tmp_path / "hidden"
    for index in (1, 2):
        tags = {"album": "Red", "artist": "Ann", "title": f"R{index}", "track": str(index)}
        path = make_audio(media / "Red" / f"{index}.mp3", seconds=1.0, tags=tags)
        embed(path, image_bytes((200, 30, 30)))
    make_audio(hidden / "H" / "1.mp3", seconds=1.0, tags={"album": "H", "title": "H1"})
    music, secret = LibraryFactory(root=media), LibraryFactory(root=hidden)
    scan(music)
    scan(secret)
    artwork_variants_task(list(Artwork.objects.values_list("id", flat=True)))
    listener = UserFactory(username="listener", password=PASSWORD)
    LibraryAccessFactory(user=listener, library=music)
    UserFactory(username="other", password=PASSWORD)
    return {
        "user": listener,
        "album": Album.objects.get(title="Red"),
        "tracks": list(Track.objects.filter(library=music).order_by("track_number")),
        "hidden": Track.objects.get(title="H1"),
    }


def test_star_rate_and_list_starred(world, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    album, (first, second), hidden = world["album"], world["tracks"], world["hidden"]
    artist = call("getArtists")["artists"]["index"][0]["artist"][0]["id"]
    assert code(call("star", id=f"tr-{first.pk}", albumId=f"al-{album.pk}", artistId=artist)) is None
    assert code(call("setRating", id=f"al-{album.pk}", rating="4")) is None
    assert code(call("setRating", id=f"tr-{second.pk}", rating="5")) is None
    assert (TrackMark.objects.count(), AlbumMark.objects.get().rating, ArtistMark.objects.get().name) == (2, 4, "Ann")
    starred = both("getStarred2")["starred2"]
    assert [s["id"] for s in starred["song"]] == [f"tr-{first.pk}"]
    assert [(a["id"], a["userRating"]) for a in starred["album"]] == [(f"al-{album.pk}", 4)]
    assert [a["name"] for a in starred["artist"]] == ["Ann"]
    assert both("getStarred")["starred"]["album"][0]["id"] == f"al-{album.pk}"
    assert [a["id"] for a in both("getAlbumList2", type="highest")["albumList2"]["album"]] == [f"al-{album.pk}"]
    assert [a["id"] for a in both("getAlbumList2", type="starred")["albumList2"]["album"]] == [f"al-{album.pk}"]
    songs = both("getAlbum", id=f"al-{album.pk}")["album"]["song"]
    assert [("starred" in s, s.get("userRating")) for s in songs] == [(True, None), (False, 5)]
    # Unstar and clear: the marks go, and an unrated row says nothing (never userRating 0).
    assert code(call("unstar", id=f"tr-{first.pk}", albumId=f"al-{album.pk}", artistId=artist)) is None
    assert code(call("setRating", id=f"tr-{second.pk}", rating="0")) is None
    assert code(call("setRating", id=f"al-{album.pk}", rating="0")) is None
    assert (TrackMark.objects.count(), AlbumMark.objects.count(), ArtistMark.objects.count()) == (0, 0, 0)
    assert both("getStarred2")["starred2"] == {"artist": [], "album": [], "song": []}
    # Bad input: nothing changed.
    assert code(call("star", id=f"tr-{hidden.pk}")) == 70
    assert code(call("star", id=f"tr-{first.pk}", albumId=f"al-{hidden.album_id}")) == 70
    assert code(call("setRating", id=f"tr-{first.pk}", rating="6")) == 10
    assert code(call("setRating", id=f"tr-{first.pk}")) == 10
    assert code(call("star")) == 10
    assert TrackMark.objects.count() == 0


def test_playlists(world, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    (first, second), hidden = world["tracks"], world["hidden"]
    created = call("createPlaylist", name="Mix", songId=[f"tr-{first.pk}", f"tr-{second.pk}", f"tr-{first.pk}"])
    playlist = created["playlist"]
    assert (playlist["name"], playlist["songCount"], [e["title"] for e in playlist["entry"]]) == (
        "Mix", 3, ["R1", "R2", "R1"],
    )  # fmt: skip
    pid = playlist["id"]
    assert code(call("updatePlaylist", playlistId=pid, name="Mix 2", comment="for the road", public="true",
                     songIndexToRemove="0", songIdToAdd=f"tr-{second.pk}")) is None  # fmt: skip
    got = both("getPlaylist", id=pid)["playlist"]
    assert (got["name"], got["comment"], got["public"], [e["title"] for e in got["entry"]]) == (
        "Mix 2", "for the road", True, ["R2", "R1", "R2"],
    )  # fmt: skip
    assert [p["name"] for p in both("getPlaylists")["playlists"]["playlist"]] == ["Mix 2"]
    replaced = call("createPlaylist", playlistId=pid, songId=f"tr-{first.pk}")["playlist"]
    assert [e["title"] for e in replaced["entry"]] == ["R1"]
    # Someone else sees the public playlist but may not change it (50); a hidden track is 70.
    assert code(call("updatePlaylist", user="other", playlistId=pid, name="mine")) == 50
    assert code(call("updatePlaylist", playlistId=pid, songIdToAdd=f"tr-{hidden.pk}")) == 70
    assert code(call("getPlaylist", id="pl-999999")) == 70
    assert code(call("deletePlaylist", user="other", id=pid)) == 50
    assert code(call("deletePlaylist", id=pid)) is None
    assert Playlist.objects.count() == 0


def test_cover_art_at_any_size(world, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    album, (first, _second), hidden = world["album"], world["tracks"], world["hidden"]
    cover_id = call("getAlbum", id=f"al-{album.pk}")["album"]["coverArt"]
    assert cover_id == f"al-{album.pk}"
    assert call("getSong", id=f"tr-{first.pk}")["song"]["coverArt"] == f"al-{album.pk}"  # the album's picture
    sizes = {}
    for size in (None, "1", "64", "100", "600", "99999"):
        params = {"u": "listener", "p": PASSWORD, "id": cover_id} | ({"size": size} if size else {})
        response = Client().get("/rest/getCoverArt", params)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg", size
        sizes[size] = Image.open(io.BytesIO(b"".join(response.streaming_content))).size
    assert sizes == {None: (400, 400), "1": (64, 64), "64": (64, 64), "100": (128, 128), "600": (400, 400),
                     "99999": (400, 400)}  # fmt: skip
    assert code(call("getCoverArt", id=cover_id, size="-1")) == 10
    assert code(call("getCoverArt", id=f"tr-{hidden.pk}")) == 70
    assert code(call("getCoverArt", id=f"al-{hidden.album_id}")) == 70
    assert code(call("getCoverArt", id="ar-QW5u")) == 70
