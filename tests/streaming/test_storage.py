"""apps.streaming.storage.RenditionStorage: the one owner of the rendition layout, on disk and under /hls/; and
the original of a track as a service any front-end calls (apps.streaming.services.track_original_open)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.streaming.models import Rendition
from apps.streaming.services import OriginalUnavailable, track_original_open
from apps.streaming.signing import hls_check
from apps.streaming.storage import RenditionStorage
from tests.pipeline import music_track

KEY = "0123456789abcdef"
PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.0,
seg00000.m4s
#EXTINF:2.5,
seg00001.m4s
#EXT-X-ENDLIST
"""


@pytest.fixture
def storage(settings, tmp_path: Path) -> RenditionStorage:
    settings.RENDITIONS_ROOT = tmp_path / "renditions"
    return RenditionStorage.from_settings()


def publish(storage: RenditionStorage, profile: str = "aac-128") -> Path:
    folder = storage.folder(45, KEY) / profile
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text(PLAYLIST)
    for name in ("init.mp4", "seg00000.m4s", "seg00001.m4s"):
        (folder / name).write_bytes(name.encode())
    return folder


def test_the_folder_the_model_the_file_and_the_tmp_root_follow_one_layout(storage: RenditionStorage) -> None:
    rendition = Rendition(track_id=45, rendition_key=KEY, profile="aac-64")

    assert storage.folder(45, KEY) == storage.root / "45" / KEY
    assert storage.root / rendition.folder_name == storage.folder(45, KEY) / "aac-64"
    assert storage.file("45", KEY, "aac-64", "init.mp4") == storage.root / rendition.folder_name / "init.mp4"
    assert storage.folder("045", KEY) != storage.folder(45, KEY)  # as nginx's alias: the URL's spelling
    assert storage.tmp_root.parent == storage.root


def test_a_folder_is_lost_until_published(storage: RenditionStorage) -> None:
    assert storage.is_lost(45, KEY)
    publish(storage)
    assert not storage.is_lost(45, KEY)


def test_files_are_in_play_order_init_first_and_none_when_any_is_gone(storage: RenditionStorage) -> None:
    assert storage.files(45, KEY, "aac-128") is None
    folder = publish(storage)

    assert storage.files(45, KEY, "aac-128") == [folder / "init.mp4", folder / "seg00000.m4s", folder / "seg00001.m4s"]

    (folder / "seg00001.m4s").unlink()
    assert storage.files(45, KEY, "aac-128") is None


def test_the_signed_prefix_names_the_folder_and_passes_the_signature_check(storage: RenditionStorage) -> None:
    prefix = RenditionStorage.url_prefix(track_id=45, rendition_key=KEY)

    match = re.fullmatch(r"/hls/(?P<expires>\d+)/(?P<signature>[A-Za-z0-9_-]+)/(?P<path>.+)", prefix)
    assert match is not None
    assert storage.root / match["path"] == storage.folder(45, KEY)
    check = hls_check(expires=match["expires"], signature=match["signature"], track="45", rendition_key=KEY)
    assert check.ok
    assert RenditionStorage.url_prefix(track_id=45, rendition_key=KEY, expires=1_900_000_020).startswith(
        "/hls/1900000020/"
    )


@pytest.mark.django_db
def test_a_tracks_original_opens_checked_with_its_media_type_or_answers_404(media: Path) -> None:
    track = music_track(media)

    original = track_original_open(track=track)
    with original.file:
        assert original.file.read() == (media / "song.mp3").read_bytes()
    assert (original.content_type, original.real_path) == ("audio/mpeg", media / "song.mp3")
    with pytest.raises(OriginalUnavailable, match="No such file") as missing:
        track_original_open(track=track, index=1)
    assert missing.value.status_code == 404
