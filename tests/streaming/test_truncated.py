"""A file cut short that the scanner cannot catch (a VBR MP3: its Xing header still counts every frame of
the whole file): the transcoder decodes what is there and the track's duration becomes the real one."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.library.models import AudioFile, Chapter, LibraryKind, Track
from apps.library.scanner.metadata import truncation_tolerance_ms
from apps.library.services import track_duration_measured
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.pipeline import ready, scan
from tests.streaming.hls_checks import check_media_playlist, rendition_dir

pytestmark = pytest.mark.django_db

VBR = ("-q:a", "4")


def cut(path: Path, size_bytes: int = 3000) -> Path:
    path.write_bytes(path.read_bytes()[:size_bytes])
    return path


def test_transcode_corrects_the_duration_of_a_vbr_mp3_cut_short(media: Path, user):
    cut(make_audio(media / "part.mp3", seconds=20, codec_args=VBR, tags={"title": "part", "album": "A"}))
    make_audio(media / "whole.mp3", seconds=20, codec_args=VBR, tags={"title": "whole", "album": "A"})
    library = LibraryFactory(root=media)
    scan(library)
    LibraryAccessFactory(user=user, library=library)
    part = Track.objects.select_related("album").get(title="part")
    # What the scanner sees: the header's 20 s, nothing to flag (no CBR shortcut for a VBR stream).
    assert abs(part.duration_ms - 20_000) < 100
    assert not part.files.get().truncated
    assert abs(part.album.duration_ms - 40_000) < 200

    rows = ready(part)
    measured_ms = max(r.duration_ms for r in rows)
    assert 0 < measured_ms < 1000
    part.refresh_from_db()
    assert part.duration_ms == measured_ms
    file = part.files.get()
    assert (file.duration_ms, file.truncated) == (measured_ms, True)
    whole = Track.objects.get(title="whole")
    part.album.refresh_from_db()
    assert part.album.duration_ms == whole.duration_ms + measured_ms
    for row in rows:
        check_media_playlist(rendition_dir(row), fmp4=True, source_ms=part.duration_ms)

    # A position in the 20 s the header claimed is past the end now.
    client = APIClient()
    client.force_authenticate(user)
    response = client.put(f"/api/v1/progress/{part.pk}", {"position_ms": 15_000, "device_id": "phone"}, format="json")
    assert response.status_code == 400
    assert client.get(f"/api/v1/tracks/{part.pk}").json()["duration_ms"] == measured_ms

    # The whole file measured what its header said: left alone.
    ready(whole)
    whole_before = whole.duration_ms
    whole.refresh_from_db()
    assert whole.duration_ms == whole_before
    assert not whole.files.get().truncated


def test_a_book_cut_short_gets_its_chapters_clipped(media: Path):
    make_audio(
        media / "Author" / "Book" / "book.m4b",
        seconds=30,
        chapters=[("One", 0, 10_000), ("Two", 10_000, 20_000), ("Three", 20_000, 30_000)],
    )
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)
    scan(library)
    book = Track.objects.get(library=library)
    assert book.chapters.count() == 3
    # As the transcoder reports a decode that ended at 15 s.
    assert track_duration_measured(track=book, measured_ms=15_000)
    book.refresh_from_db()
    assert book.duration_ms == 15_000
    assert list(Chapter.objects.filter(track=book).values_list("title", "start_ms", "end_ms")) == [
        ("One", 0, 10_000),
        ("Two", 10_000, 15_000),
    ]
    assert AudioFile.objects.get(track=book).truncated
    # Within the tolerance of what is stored now: nothing to correct.
    assert not track_duration_measured(track=book, measured_ms=15_000 - truncation_tolerance_ms(15_000) + 1)


def test_the_one_file_decoded_is_the_one_flagged(media: Path):
    make_audio(media / "Author" / "Book" / "01.mp3", seconds=30)
    (media / "Author" / "Book" / "02.mp3").write_bytes(b"not audio" * 100)  # kept with its error, not played
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)
    scan(library)
    book = Track.objects.get(library=library)
    assert AudioFile.objects.filter(track=book).exclude(error="").count() == 1
    assert track_duration_measured(track=book, measured_ms=12_000)
    assert list(AudioFile.objects.filter(track=book).values_list("path", "truncated").order_by("path")) == [
        ("Author/Book/01.mp3", True),
        ("Author/Book/02.mp3", False),
    ]
