"""An original swapped after the scan is never served (issue 13, finding 1): a symlink out of the library (the
server's secret key, /etc/passwd, another library's file) or any other file than the one scanned answers 404
on every way an original leaves the server, and the file is marked changed for the next scan."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from apps.library.models import AudioFile, ScanJob, Track
from apps.library.services.originals import CHANGED_MTIME_NS, OriginalRefused, audio_file_open
from apps.streaming.models import Rendition
from apps.streaming.services import rendition_transcode
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.pipeline import book_track, music_track, ready, scan

pytestmark = pytest.mark.django_db

SECRET = b"SECRET_KEY=django-insecure-do-not-leak\n"


@pytest.fixture
def listener(api_client: APIClient, user) -> APIClient:
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def secret_key(tmp_path: Path) -> Path:
    """Outside every library, as var/secret_key is."""
    path = tmp_path / "var" / "secret_key"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def swap_for_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_refused(response, audio_file: AudioFile) -> None:
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert SECRET not in body(response) and b"root:" not in body(response)
    audio_file.refresh_from_db()
    assert audio_file.mtime_ns == CHANGED_MTIME_NS  # the next scan sees a change and reads it again
    assert ScanJob.objects.filter(library=audio_file.library, status="queued").count() == 1


@pytest.mark.parametrize("target", ["secret_key", "/etc/passwd"])
def test_file_refuses_a_symlink_out_of_the_library_swapped_in_after_the_scan(
    listener, user, media: Path, secret_key: Path, target: str
) -> None:
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    swap_for_link(media / "song.mp3", secret_key if target == "secret_key" else Path(target))

    response = listener.get(f"/api/v1/tracks/{track.pk}/file")

    assert_refused(response, track.files.get())


def test_file_refuses_another_librarys_file_even_with_the_same_size_and_mtime(
    listener, user, media: Path, tmp_path: Path
) -> None:
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    other_root = tmp_path / "other-library"
    other_root.mkdir()
    other = other_root / "private.mp3"
    shutil.copy2(media / "song.mp3", other)  # a twin: only where it lies tells it apart
    LibraryFactory(root=other_root, name="Someone else's")
    swap_for_link(media / "song.mp3", other)

    assert_refused(listener.get(f"/api/v1/tracks/{track.pk}/file"), track.files.get())


def test_files_n_of_a_book_refuses_a_swapped_part(listener, user, media: Path, secret_key: Path) -> None:
    track = book_track(media, parts=2, seconds=2)
    LibraryAccessFactory(user=user, library=track.library)
    first = (media / "Author" / "Book" / "01.mp3").read_bytes()
    swap_for_link(media / "Author" / "Book" / "02.mp3", secret_key)

    assert body(listener.get(f"/api/v1/tracks/{track.pk}/files/0")) == first
    assert_refused(listener.get(f"/api/v1/tracks/{track.pk}/files/1"), track.files.get(path="Author/Book/02.mp3"))


def test_a_token_link_refuses_a_swapped_file(listener, user, media: Path, secret_key: Path) -> None:
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    url = listener.get(f"/api/v1/tracks/{track.pk}/stream").json()["url"]
    token = parse_qs(urlsplit(url).query)["token"][0]
    swap_for_link(media / "song.mp3", secret_key)

    response = APIClient().get(f"/api/v1/tracks/{track.pk}/file", {"token": token})

    assert_refused(response, track.files.get())


def test_behind_nginx_a_swapped_file_gets_no_x_accel_redirect(
    listener, user, media: Path, secret_key: Path, settings
) -> None:
    settings.USE_X_ACCEL_REDIRECT = True
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    swap_for_link(media / "song.mp3", secret_key)

    response = listener.get(f"/api/v1/tracks/{track.pk}/file")

    assert not response.has_header("X-Accel-Redirect")
    assert_refused(response, track.files.get())


def test_a_file_rewritten_in_place_is_refused_until_the_next_scan_reads_it(listener, user, media: Path) -> None:
    track = music_track(media, seconds=3)
    LibraryAccessFactory(user=user, library=track.library)
    make_audio(media / "song.mp3", seconds=5, frequency=880, tags={"title": "song.mp3"})

    assert_refused(listener.get(f"/api/v1/tracks/{track.pk}/file"), track.files.get())
    scan(track.library)

    response = listener.get(f"/api/v1/tracks/{track.pk}/file")
    assert response.status_code == 200
    assert body(response) == (media / "song.mp3").read_bytes()
    assert track.files.get().mtime_ns == (media / "song.mp3").stat().st_mtime_ns


def test_a_symlink_inside_the_library_plays_and_nginx_is_sent_its_real_path(
    listener, user, media: Path, settings
) -> None:
    make_audio(media / "Real" / "take.mp3", seconds=3, tags={"title": "take"})
    (media / "Alias").mkdir()
    (media / "Alias" / "song.mp3").symlink_to(media / "Real" / "take.mp3")
    library = LibraryFactory(root=media)
    scan(library)
    LibraryAccessFactory(user=user, library=library)
    linked = Track.objects.get(library=library, files__path="Alias/song.mp3")

    direct = listener.get(f"/api/v1/tracks/{linked.pk}/file")
    settings.USE_X_ACCEL_REDIRECT = True
    accel = listener.get(f"/api/v1/tracks/{linked.pk}/file")

    assert direct.status_code == 200 and body(direct) == (media / "Real" / "take.mp3").read_bytes()
    assert accel["X-Accel-Redirect"] == f"/_originals{media}/Real/take.mp3"  # nginx follows no symlink


def test_audio_file_open_refuses_a_fifo_without_hanging_and_a_vanished_file_is_not_found(
    media: Path, secret_key: Path
) -> None:
    track = music_track(media)
    audio_file = track.files.get()
    (media / "song.mp3").unlink()
    with pytest.raises(FileNotFoundError):
        audio_file_open(audio_file=audio_file)
    os.mkfifo(media / "song.mp3")  # a reader would block in open() without O_NONBLOCK
    with pytest.raises(OriginalRefused):
        audio_file_open(audio_file=audio_file)


def test_the_transcoder_refuses_a_swapped_source_so_nothing_is_downloadable(
    listener, user, media: Path, tmp_path: Path
) -> None:
    track = music_track(media, seconds=3)
    LibraryAccessFactory(user=user, library=track.library)
    other_root = tmp_path / "other-library"
    other_root.mkdir()
    shutil.copy2(media / "song.mp3", other_root / "private.mp3")  # same size and mtime: only its place differs
    LibraryFactory(root=other_root, name="Someone else's")
    swap_for_link(media / "song.mp3", other_root / "private.mp3")

    result = rendition_transcode(track_id=track.pk)

    assert result.outcome == "source_changed"
    assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"pending"}
    assert listener.get(f"/api/v1/tracks/{track.pk}/download", {"profile": "aac-128"}).status_code == 202
    assert track.files.get().mtime_ns == CHANGED_MTIME_NS


def test_the_transcoder_reads_a_symlinked_source_inside_the_library(media: Path) -> None:
    make_audio(media / "Real" / "take.mp3", seconds=3, tags={"title": "take"})
    (media / "song.mp3").symlink_to(media / "Real" / "take.mp3")
    library = LibraryFactory(root=media)
    scan(library)

    ready(Track.objects.get(library=library, files__path="song.mp3"))
