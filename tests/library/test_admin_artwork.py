"""Covers in the admin: thumbnails on the album, track and artwork lists and pages (their signed /art/ URLs), and
a cover uploaded on the album's page: checked (a non-image is refused with the reason, nothing changes), stored
as any cover, winning over scanned ones."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.library.models import Album, Artwork, ArtworkSource
from apps.library.tasks import artwork_variants_task
from tests.artwork import embed, image_bytes
from tests.audio import make_audio
from tests.factories import LibraryFactory, UserFactory
from tests.library.test_artwork import sha
from tests.pipeline import scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def album(media) -> Album:
    embed(make_audio(media / "A" / "1.mp3", seconds=1.0, tags={"album": "A", "title": "One"}), image_bytes((9, 9, 9)))
    scan(LibraryFactory(root=media))
    artwork_variants_task(list(Artwork.objects.values_list("id", flat=True)))
    return Album.objects.get()


def album_form(album: Album, **extra) -> dict:
    return {
        "library": album.library_id, "title": album.title, "album_artist": "", "album_artists": "", "artists": "",
        "genres": "", "year": "", "release_type": "", "author": "", "track_count": album.track_count,
        "duration_ms": album.duration_ms, "artwork_error": "", **extra,
    }  # fmt: skip


def test_lists_and_pages_show_thumbnails(admin_client, album):
    content_hash = album.artwork.hash
    track = album.tracks.get()
    for url in ("/admin/library/album/", "/admin/library/track/", "/admin/library/artwork/",
                f"/admin/library/album/{album.pk}/change/", f"/admin/library/track/{track.pk}/change/"):  # fmt: skip
        html = admin_client.get(url).content.decode()
        assert f"/{content_hash}/" in html and '<img src="/art/' in html, url


def test_an_uploaded_cover_replaces_the_scanned_one(admin_client, album):
    uploaded = image_bytes((250, 100, 0), size=(320, 320), fmt="PNG")
    reply = admin_client.post(
        f"/admin/library/album/{album.pk}/change/",
        album_form(album, cover_upload=SimpleUploadedFile("new.png", uploaded, content_type="image/png")),
    )
    assert reply.status_code == 302, reply.content.decode()[:2000]
    album.refresh_from_db()
    assert (album.artwork.hash, album.artwork.source) == (sha(uploaded), ArtworkSource.UPLOAD)
    assert album.artwork_key == f"upload:{sha(uploaded)}"


def test_a_non_image_upload_is_refused_with_the_reason(admin_client, album):
    before = album.artwork_id
    reply = admin_client.post(
        f"/admin/library/album/{album.pk}/change/",
        album_form(
            album, cover_upload=SimpleUploadedFile("cover.jpg", b"just text, really", content_type="image/jpeg")
        ),
    )
    assert reply.status_code == 200
    assert "not an image (neither JPEG, PNG nor WebP)" in reply.content.decode()
    album.refresh_from_db()
    assert album.artwork_id == before
