"""Covers through the API: `cover` objects in album and track payloads (no query per row), /cover redirects
to signed /art/ URLs (size snapped up, format by parameter else Accept, 404 for what the user may not see),
and the /art/ fallback view's answers (immutable, ETag = content hash, nginx's verdicts)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.library.artwork.storage import ArtworkStorage
from apps.library.models import Album, Artwork, LibraryKind, Track
from apps.library.tasks import artwork_variants_task
from apps.ops.signing import secure_link_signature
from tests.artwork import embed, image_bytes
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.library.test_artwork import sha
from tests.pipeline import scan

pytestmark = pytest.mark.django_db

RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def rgb(color: str | None) -> tuple[int, ...] | None:
    """#rrggbb → (r, g, b) rounded to tens: JPEG moves a flat colour by a few units."""
    return None if color is None else tuple(round(int(color[i : i + 2], 16), -1) for i in (1, 3, 5))


def build_all() -> None:
    artwork_variants_task(list(Artwork.objects.values_list("id", flat=True)))


@pytest.fixture
def world(tmp_path):
    media, hidden = tmp_path / "music", tmp_path / "hidden"
    for album, color in (("A", RED), ("B", GREEN), ("C", None)):
        for index in (1, 2):
            path = make_audio(media / album / f"{index}.mp3", seconds=1.0,
                              tags={"album": album, "title": f"{album}{index}", "track": str(index)})  # fmt: skip
            if color:
                embed(path, image_bytes(color))
    embed(make_audio(hidden / "H" / "1.mp3", seconds=1.0, tags={"album": "H", "title": "H1"}), image_bytes(BLUE))
    music, secret = LibraryFactory(root=media), LibraryFactory(root=hidden)
    scan(music)
    scan(secret)
    build_all()
    listener = UserFactory()
    LibraryAccessFactory(user=listener, library=music)
    client = APIClient()
    client.force_authenticate(listener)
    return client


def test_album_and_track_payloads_carry_signed_cover_urls_without_a_query_per_row(world):
    with CaptureQueriesContext(connection) as listed:
        albums = world.get("/api/v1/albums").json()["results"]
    by_title = {album["title"]: album for album in albums}
    red = sha(image_bytes(RED))
    cover = by_title["A"]["cover"]
    assert rgb(cover["color"]) == (200, 30, 30) and (cover["width"], cover["height"]) == (400, 400)
    assert cover["color"] == Album.objects.get(title="A").artwork.color
    assert sorted(cover["webp"]) == ["128", "300", "600", "64", "original"]
    assert re.fullmatch(rf"/art/[0-9]+/[A-Za-z0-9_-]{{22}}/{red}/300\.webp", cover["webp"]["300"])
    assert cover["jpeg"]["64"].endswith(f"/{red}/64.jpg")
    assert by_title["C"]["cover"] is None
    tracks = world.get("/api/v1/tracks").json()["results"]
    with CaptureQueriesContext(connection) as all_tracks:
        assert len(world.get("/api/v1/tracks").json()["results"]) == 6
    Track.objects.filter(album__title__in=["B", "C"]).update(missing=True)  # listed no more
    with CaptureQueriesContext(connection) as two_tracks:
        assert len(world.get("/api/v1/tracks").json()["results"]) == 2
    Track.objects.update(missing=False)
    assert len(two_tracks) == len(all_tracks)  # six rows or two, covers included: the same queries
    assert {t["title"]: rgb((t["cover"] or {}).get("color")) for t in tracks} == {
        "A1": RED, "A2": RED, "B1": GREEN, "B2": GREEN, "C1": None, "C2": None
    }  # fmt: skip
    # Three albums or one: the same number of queries.
    Album.objects.filter(title__in=["B", "C"]).update(track_count=0)
    with CaptureQueriesContext(connection) as one:
        assert len(world.get("/api/v1/albums").json()["results"]) == 1
    assert len(one) == len(listed)
    with CaptureQueriesContext(connection) as detail:
        detail_tracks = world.get(f"/api/v1/albums/{by_title['A']['id']}").json()["tracks"]
    assert detail_tracks[0]["cover"]["color"] == cover["color"]
    assert len(detail) <= 3


@pytest.mark.parametrize(
    ("query", "accept", "name"),
    [
        ("", "image/avif,image/webp,*/*", "original.webp"),
        ("?size=300", "image/webp", "300.webp"),
        ("?size=65", "image/webp", "128.webp"),
        ("?size=1", "", "64.jpg"),
        ("?size=600&format=jpg", "image/webp", "600.jpg"),
        ("?size=601&format=jpeg", "", "original.jpg"),
        ("?size=original&format=webp", "", "original.webp"),
    ],
)
def test_cover_redirects_to_the_signed_url_of_the_snapped_size_and_negotiated_format(world, query, accept, name):
    album = Album.objects.get(title="A")
    reply = world.get(f"/api/v1/albums/{album.pk}/cover{query}", HTTP_ACCEPT=accept)
    assert reply.status_code == 302
    assert reply["Location"] == ArtworkStorage.url(
        album.artwork.hash, name.split(".")[0], name.endswith("webp") and "webp" or "jpeg"
    )  # noqa: E501
    assert reply["Cache-Control"] == "private, max-age=3600"


def test_cover_errors(world):
    album_a, album_c = Album.objects.get(title="A"), Album.objects.get(title="C")
    hidden_track, hidden_album = Track.objects.get(title="H1"), Album.objects.get(title="H")
    assert world.get(f"/api/v1/albums/{album_a.pk}/cover?size=big").json()["error"]["fields"].keys() == {"size"}
    assert world.get(f"/api/v1/albums/{album_a.pk}/cover?format=gif").status_code == 400
    assert world.get(f"/api/v1/albums/{album_c.pk}/cover").status_code == 404
    assert world.get(f"/api/v1/albums/{hidden_album.pk}/cover").status_code == 404
    assert world.get(f"/api/v1/tracks/{hidden_track.pk}/cover").status_code == 404
    assert world.get(f"/api/v1/tracks/{Track.objects.get(title='A1').pk}/cover").status_code == 302
    assert APIClient().get(f"/api/v1/albums/{album_a.pk}/cover").status_code in (401, 403)


def test_the_art_view_serves_immutable_variants_with_the_hash_as_etag(world):
    album = Album.objects.get(title="A")
    location = world.get(f"/api/v1/albums/{album.pk}/cover?size=64&format=jpeg")["Location"]
    reply = Client().get(location)  # no session, no token: the signature is the permission
    assert reply.status_code == 200
    assert reply["Content-Type"] == "image/jpeg"
    assert reply["Cache-Control"] == "public, max-age=31536000, immutable"
    assert reply["ETag"] == f'"{album.artwork.hash}"'
    body = b"".join(reply.streaming_content)
    assert body == ArtworkStorage.from_settings().file(album.artwork.hash, "64.jpg").read_bytes()
    assert Client().get(location, HTTP_IF_NONE_MATCH=f'"{album.artwork.hash}"').status_code == 304


def art_table(content_hash: str, secret: str) -> list[tuple[str, str, int]]:
    """(what, path, expected status) for /art/ URLs: the same rows nginx is checked against (tests/e2e)."""
    now = int(time.time())
    expires, expired = now + 3600, now - 60
    sig = secure_link_signature(expires=expires, resource=content_hash, secret=secret)
    expired_sig = secure_link_signature(expires=expired, resource=content_hash, secret=secret)
    foreign = secure_link_signature(expires=expires, resource=content_hash, secret="another secret")
    other_hash = "0" * 64
    other_sig = secure_link_signature(expires=expires, resource=other_hash, secret=secret)
    base = f"/art/{expires}/{sig}/{content_hash}"
    tampered = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    return [
        ("valid webp", f"{base}/300.webp", 200),
        ("valid jpeg original", f"{base}/original.jpg", 200),
        ("padded signature", f"/art/{expires}/{sig}==/{content_hash}/64.jpg", 200),
        ("query ignored", f"{base}/64.jpg?x=1", 200),
        ("double slashes", f"/art//{expires}//{sig}/{content_hash}//64.jpg", 200),
        ("dot segments", f"/art/./{expires}/{sig}/./{content_hash}/64.jpg", 200),
        ("unknown size", f"{base}/65.jpg", 404),
        ("unknown format", f"{base}/64.png", 404),
        ("the original's raw bytes", f"/art/{expires}/{sig}/originals/{content_hash[:2]}/{content_hash}", 404),
        ("uppercase hash", f"/art/{expires}/{sig}/{content_hash.upper()}/64.jpg", 404),
        ("short hash", f"/art/{expires}/{sig}/{content_hash[:40]}/64.jpg", 404),
        ("tampered signature", f"/art/{expires}/{tampered}/{content_hash}/64.jpg", 403),
        ("other secret", f"/art/{expires}/{foreign}/{content_hash}/64.jpg", 403),
        ("later expiry", f"/art/{expires + 60}/{sig}/{content_hash}/64.jpg", 403),
        ("zero before expiry", f"/art/0{expires}/{sig}/{content_hash}/64.jpg", 403),
        ("signature moved to another hash", f"/art/{expires}/{sig}/{other_hash}/64.jpg", 403),
        ("signed unknown hash", f"/art/{expires}/{other_sig}/{other_hash}/64.jpg", 404),
        ("expired", f"/art/{expired}/{expired_sig}/{content_hash}/64.jpg", 410),
        ("dotdot out", f"{base}/../../../../etc/passwd", 404),
        ("dotdot above root", "/art/../../../etc/passwd", 400),
        ("encoded dotdot", f"{base}/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404),
        ("NUL", f"{base}/64.jpg%00.webp", 400),
        ("trailing slash", f"{base}/64.jpg/", 404),
        ("bare prefix", "/art/", 404),
    ]


def test_the_art_view_gives_nginx_secure_link_verdicts(world, settings):
    content_hash = Album.objects.get(title="A").artwork.hash
    client = Client()
    rows = [(what, client.get(path).status_code, expected) for what, path, expected in
            art_table(content_hash, settings.HLS_SIGNING_SECRET)]  # fmt: skip
    assert [row for row in rows if row[1] != row[2]] == []


def test_a_podcast_episode_shows_its_own_image_else_its_shows(tmp_path):
    media = tmp_path / "pods"
    own = make_audio(media / "Show" / "e1.mp3", seconds=1.0, tags={"album": "Show", "title": "E1"})
    make_audio(media / "Show" / "e2.mp3", seconds=1.0, tags={"album": "Show", "title": "E2"})
    embed(own, image_bytes(RED))
    (media / "Show" / "folder.jpg").write_bytes(image_bytes(GREEN))
    scan(LibraryFactory(root=media, kind=LibraryKind.PODCAST))
    build_all()
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    covers = {t["title"]: rgb(t["cover"]["color"]) for t in client.get("/api/v1/tracks").json()["results"]}
    assert covers == {"E1": RED, "E2": GREEN}
    episode = Track.objects.get(title="E2")
    assert urlsplit(client.get(f"/api/v1/tracks/{episode.pk}/cover")["Location"]).path.split("/")[4] == sha(
        image_bytes(GREEN)
    )
