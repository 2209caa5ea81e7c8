"""ffmpeg itself as the HLS client, against a live server (a real HTTP socket)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import m3u8
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import LibraryAccessFactory
from tests.pipeline import book_track, music_track, ready
from tests.streaming.hls_checks import decoded_seconds

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def ffmpeg_decode(url: str) -> float:
    run = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-stats", "-i", url, "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in run.stderr.splitlines() if line and not line.lstrip().startswith(("size=", "frame="))]
    assert run.returncode == 0 and not [e for e in errors if "time=" not in e], run.stderr[-2000:]
    return decoded_seconds(run.stderr)


@pytest.mark.parametrize("segment_format", ["fmp4", "mpegts"])
def test_ffmpeg_plays_master_and_every_variant(live_server, user, tmp_path: Path, segment_format: str, settings):
    settings.HLS_SEGMENT_FORMAT = segment_format
    media = tmp_path / "library"
    track = music_track(media, seconds=20)
    LibraryAccessFactory(user=user, library=track.library)
    ready(track)
    client = APIClient()
    client.force_authenticate(user)
    decision = client.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac"}).json()
    assert decision["mode"] == "hls" and decision["ready"]
    master_url = live_server.url + decision["url"]
    assert abs(ffmpeg_decode(master_url) - track.duration_ms / 1000) <= 0.5
    master = m3u8.loads(client.get(decision["url"]).content.decode())
    assert len(master.playlists) == 3
    for variant in master.playlists:
        media_playlist = m3u8.loads(b"".join(client.get(variant.uri).streaming_content).decode())
        assert media_playlist.is_endlist and media_playlist.segments
        assert abs(ffmpeg_decode(live_server.url + variant.uri) - track.duration_ms / 1000) <= 0.5


def test_ffmpeg_plays_a_book_through_the_master(live_server, user, tmp_path: Path):
    track = book_track(tmp_path / "library", parts=3, seconds=4)
    LibraryAccessFactory(user=user, library=track.library)
    ready(track)
    client = APIClient()
    client.force_authenticate(user)
    decision = client.get(f"/api/v1/tracks/{track.pk}/stream").json()
    assert abs(ffmpeg_decode(live_server.url + decision["url"]) - 12.0) <= 0.5
