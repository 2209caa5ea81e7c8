"""Covers found by the scanner: folder images and embedded pictures (APIC, covr, FLAC, Vorbis), stored once by
content hash; bad images recorded on the album with the reason while the previous good cover stays."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from apps.library.artwork.storage import ArtworkStorage
from apps.library.models import Album, Artwork, ArtworkSource, AudioFile, LibraryKind, Track
from apps.library.services.artwork import album_cover_upload
from tests.artwork import bomb_png, embed, image_bytes
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory
from tests.pipeline import scan

pytestmark = pytest.mark.django_db

RED, GREEN, BLUE, YELLOW = (200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 20)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def album_track(media: Path, album: str, name: str, index: int = 1) -> Path:
    return make_audio(
        media / album / name, seconds=1.0, tags={"title": f"{album} {index}", "album": album, "track": str(index)}
    )


def album(title: str) -> Album:
    return Album.objects.select_related("artwork").get(title=title)


def test_embedded_pictures_of_every_format_and_folder_images(media):
    red, green, blue, yellow = (image_bytes(c) for c in (RED, GREEN, BLUE, YELLOW))
    png = image_bytes(YELLOW, fmt="PNG")
    # ID3: the front cover (type 3) wins over a picture of another type listed first; two tracks, one image.
    for index in (1, 2):
        path = album_track(media, "Apic", f"{index:02d}.mp3", index)
        embed(path, red, picture_type=0)
        embed(path, green, picture_type=3)
    embed(album_track(media, "Covr", "01.m4a"), blue)
    embed(album_track(media, "Flac", "01.flac"), png, mime="image/png")
    embed(album_track(media, "Vorbis", "01.ogg"), yellow)
    # A folder image wins over the embedded picture; the track keeps its own.
    embed(album_track(media, "Folder", "01.mp3"), red)
    folder_blue = image_bytes(BLUE, size=(500, 500))
    (media / "Folder" / "Cover.JPG").write_bytes(folder_blue)
    (media / "Folder" / "back.jpg").write_bytes(green)
    library = LibraryFactory(root=media)

    result = scan(library)

    assert album("Apic").artwork.hash == sha(green)
    assert album("Covr").artwork.hash == sha(blue)
    assert album("Flac").artwork.hash == sha(png)
    assert (album("Flac").artwork.mime, album("Flac").artwork.width) == ("image/png", 400)
    assert album("Vorbis").artwork.hash == sha(yellow)
    assert album("Folder").artwork.hash == sha(folder_blue)
    assert album("Folder").artwork.source == ArtworkSource.FOLDER
    assert Track.objects.get(title="Folder 1").artwork.hash == sha(red)
    assert {t.artwork.hash for t in Track.objects.filter(album__title="Apic")} == {sha(green)}
    # Stored once per content: green (2 tracks), blue, png, yellow, red (embedded twice), the folder's blue.
    assert Artwork.objects.count() == 6
    storage = ArtworkStorage.from_settings()
    assert storage.original(sha(green)).read_bytes() == green
    assert sorted(result.artwork_ids) == sorted(Artwork.objects.values_list("id", flat=True))
    assert all(album.artwork_error == "" for album in Album.objects.all())


def test_a_changed_folder_image_or_embedded_picture_is_picked_up_by_a_rescan(media):
    path = album_track(media, "A", "01.mp3")
    embed(path, image_bytes(RED))
    library = LibraryFactory(root=media)
    scan(library)
    assert album("A").artwork.hash == sha(image_bytes(RED))
    library.refresh_from_db()
    fingerprint = library.artwork_fingerprint

    scan(library)  # nothing changed: nothing read, nothing written
    library.refresh_from_db()
    assert library.artwork_fingerprint == fingerprint

    cover = media / "A" / "folder.png"
    cover.write_bytes(image_bytes(GREEN, fmt="PNG"))
    scan(library)
    assert album("A").artwork.hash == sha(image_bytes(GREEN, fmt="PNG"))

    cover.write_bytes(image_bytes(BLUE, fmt="PNG"))
    touch_later(cover)
    scan(library)
    assert album("A").artwork.hash == sha(image_bytes(BLUE, fmt="PNG"))

    cover.unlink()
    tags_path = media / "A" / "01.mp3"
    from mutagen.id3 import ID3

    tags = ID3(tags_path)
    tags.delall("APIC")
    tags.save(tags_path)
    embed(tags_path, image_bytes(YELLOW))
    touch_later(tags_path)
    scan(library)
    assert album("A").artwork.hash == sha(image_bytes(YELLOW))
    assert AudioFile.objects.get().artwork.hash == sha(image_bytes(YELLOW))


def _text_cover() -> bytes:
    return b"This is not a picture, just a text file named cover.jpg\n" * 3


BAD_FOLDER_IMAGES = [
    ("zero bytes", b"", "empty image (0 bytes)"),
    ("text file", _text_cover(), "not an image (neither JPEG, PNG nor WebP)"),
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "SVG is not accepted as a cover (only JPEG, PNG or WebP)"),
    ("gif", image_bytes(RED, fmt="GIF"), "GIF is not accepted as a cover (only JPEG, PNG or WebP)"),
    ("truncated png", image_bytes(GREEN, size=(300, 300), fmt="PNG")[:300], "corrupt or truncated PNG"),
    ("truncated jpeg", image_bytes(GREEN)[:1500], "corrupt or truncated JPEG (image file is truncated"),
    ("bomb", bomb_png(), "image of 30000×30000 pixels, over the limit of 25 megapixels (not decoded)"),
    ("over the byte limit", os.urandom(11 * 1024 * 1024), "image of 11.5 MB, over the 10.5 MB limit"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "data", "reason"), BAD_FOLDER_IMAGES, ids=[row[0] for row in BAD_FOLDER_IMAGES])
def test_a_bad_folder_image_is_recorded_and_the_previous_cover_stays(media, what, data, reason):
    good = image_bytes(BLUE)
    album_track(media, "A", "01.mp3")
    cover = media / "A" / "cover.jpg"
    cover.write_bytes(good)
    library = LibraryFactory(root=media)
    scan(library)
    assert album("A").artwork.hash == sha(good)

    cover.write_bytes(data)
    touch_later(cover)
    result = scan(library)

    assert result.errors == 0  # the scan went on: a cover problem is the album's, not a file error
    assert album("A").artwork.hash == sha(good)
    assert album("A").artwork_error.startswith(f"folder image A/cover.jpg: {reason}")
    assert not ArtworkStorage.from_settings().original(sha(data)).exists()
    scan(library)  # unchanged: the reason stays, nothing read again
    assert album("A").artwork_error.startswith(f"folder image A/cover.jpg: {reason}")


def test_bad_embedded_pictures_are_recorded_and_the_files_previous_picture_stays(media, settings):
    path = album_track(media, "A", "01.mp3")
    embed(path, image_bytes(RED))
    library = LibraryFactory(root=media)
    scan(library)
    from mutagen.id3 import ID3

    tags = ID3(path)
    tags.delall("APIC")
    tags.save(path)
    embed(path, bomb_png(), mime="image/png")
    touch_later(path)
    scan(library)

    assert album("A").artwork.hash == sha(image_bytes(RED))
    assert album("A").artwork_error == (
        "01.mp3: embedded picture: image of 30000×30000 pixels, over the limit of 25 megapixels (not decoded)"
    )
    assert Track.objects.get().duration_ms > 0  # the tags and audio still count


def test_a_20_mb_embedded_jpeg_is_refused_by_the_byte_limit(media):
    path = album_track(media, "A", "01.mp3")
    embed(path, b"\xff\xd8\xff\xe0" + os.urandom(20 * 1024 * 1024))
    result = scan(LibraryFactory(root=media))
    assert result.errors == 0
    assert album("A").artwork is None
    assert album("A").artwork_error == "01.mp3: embedded picture: image of 21.0 MB, over the 10.5 MB limit"


def test_a_book_uses_any_image_in_its_folder(media):
    for index in (1, 2):
        make_audio(media / "Author" / "Book" / f"{index:02d}.mp3", seconds=1.0, tags={"album": "Book"})
    (media / "Author" / "Book" / "scan 01.png").write_bytes(image_bytes(GREEN, fmt="PNG"))
    embed(media / "Author" / "Book" / "01.mp3", image_bytes(RED))
    scan(LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK))
    assert Track.objects.get().artwork.hash == sha(image_bytes(GREEN, fmt="PNG"))


def test_an_uploaded_cover_wins_and_survives_rescans(media):
    album_track(media, "A", "01.mp3")
    (media / "A" / "cover.jpg").write_bytes(image_bytes(RED))
    library = LibraryFactory(root=media)
    scan(library)
    uploaded = image_bytes(GREEN, fmt="PNG")

    artwork = album_cover_upload(album=album("A"), data=uploaded)

    assert (artwork.hash, artwork.source) == (sha(uploaded), ArtworkSource.UPLOAD)
    (media / "A" / "cover.jpg").write_bytes(image_bytes(BLUE))
    touch_later(media / "A" / "cover.jpg")
    scan(library)
    assert album("A").artwork.hash == sha(uploaded)
    with pytest.raises(ValidationError) as refused:
        album_cover_upload(album=album("A"), data=b"%PDF-1.4 not an image")
    assert refused.value.message_dict == {"image": ["not an image (neither JPEG, PNG nor WebP)"]}
    assert album("A").artwork.hash == sha(uploaded)
