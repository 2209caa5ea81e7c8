"""Growing renditions (issue 18): an interactive transcode publishes whole segments as they are made, in an
EVENT playlist served `no-cache`; the master playlist is served once every variant has its first segment; a
second listener joins the run; ffmpeg, as the client, plays it while it grows, to the end; a failed run
withdraws what it published. With the Procfile's interactive worker and the real ffmpeg."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import m3u8
import psutil
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.streaming import services
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import track_rendition_key
from apps.streaming.services import master_playlist_for_playback
from apps.streaming.storage import RenditionStorage
from tests.audio import make_audio
from tests.conftest import wait_for
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.pipeline import scan_job
from tests.streaming.hls_checks import check_media_playlist, decoded_seconds
from tests.streaming.workers import procfile_worker_start, worker_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECONDS = 120


def statuses(track_id: int) -> set[str]:
    return set(Rendition.objects.filter(track_id=track_id).values_list("status", flat=True))


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def long_track(tmp_path: Path):
    media = tmp_path / "library"
    make_audio(media / "long.flac", seconds=SECONDS, tags={"title": "long"})
    library = LibraryFactory(root=media)
    scan_job(library)
    return library.tracks.get()


def master_when_growing(track) -> m3u8.M3U8:
    found: list[str] = []

    def served() -> bool:
        playlist = master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None)
        return bool(playlist) and not found.append(playlist)

    wait_for(served, timeout_s=60, what="the growing master playlist")
    return m3u8.loads(found[0])


def test_a_growing_rendition_is_played_by_ffmpeg_while_it_is_made(
    tmp_path: Path, process_env, user, live_server, django_capture_on_commit_callbacks
):
    track = long_track(tmp_path)
    LibraryAccessFactory(user=user, library=track.library)
    client = APIClient()
    client.force_authenticate(user)
    worker = procfile_worker_start("interactive", process_env)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = client.get(f"/api/v1/tracks/{track.pk}/master.m3u8")
        assert first.status_code == 202  # queued on transcode.interactive, growing
        master = master_when_growing(track)
        assert statuses(track.pk) == {RenditionStatus.RUNNING}  # served before the run is over
        # Nominal bit rates (+15 %) until measured, variants pointing at the live playlists.
        assert [(p.uri.rsplit("/", 2)[1:], p.stream_info.average_bandwidth, p.stream_info.bandwidth)
                for p in master.playlists] == [
            (["aac-64", "live.m3u8"], 64000, 73600),
            (["aac-128", "live.m3u8"], 128000, 147200),
            (["aac-256", "live.m3u8"], 256000, 294400),
        ]  # fmt: skip
        # The stream decision says so to a client that does not play FLAC: not ready, but playable now.
        decision = client.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac"}).json()
        assert (decision["mode"], decision["ready"], decision["growing"]) == ("hls", False, True)
        # A second listener joins the same run: nothing more is queued.
        with django_capture_on_commit_callbacks(execute=True):
            assert services.renditions_request(track_ids=[track.pk], interactive=True) == 0

        variant = master.playlists[0].uri
        live = client.get(variant)
        assert live.status_code == 200 and live["Cache-Control"] == "no-cache"
        playlist = m3u8.loads(body(live))
        assert playlist.playlist_type == "event" and not playlist.is_endlist
        folder = settings.RENDITIONS_ROOT / str(track.pk) / variant.split("/")[-3] / "aac-64"
        assert playlist.segments and all((folder / s.uri).is_file() for s in playlist.segments)
        assert all(s.uri.endswith(".m4s") for s in playlist.segments)  # never a temp name
        segment = client.get(variant.replace("live.m3u8", playlist.segments[0].uri))
        assert segment.status_code == 200 and segment["Cache-Control"] == "public, max-age=31536000, immutable"
        started = time.monotonic()
        missing = client.get(variant.replace("live.m3u8", "seg00999.m4s"))
        assert missing.status_code == 404 and time.monotonic() - started < 0.5  # not yet made: 404 at once

        # ffmpeg follows the EVENT playlist while it grows, to its EXT-X-ENDLIST: the whole track.
        run = subprocess.run(
            [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-stats"]
            + ["-i", live_server.url + variant, "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert abs(decoded_seconds(run.stderr) - SECONDS) <= 0.5
        wait_for(lambda: statuses(track.pk) == {RenditionStatus.READY}, timeout_s=60, what="ready")
    finally:
        worker_stop(worker)
    finished = m3u8.loads(body(client.get(variant)))
    assert finished.playlist_type == "event" and finished.is_endlist  # the live playlist, complete
    assert [s.uri for s in finished.segments] == [
        s.uri for s in m3u8.loads((folder / "index.m3u8").read_text()).segments
    ]
    # Ready: the master now points at the VOD playlists with measured bit rates, as for any ready track.
    master = m3u8.loads(master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None))
    assert [p.uri.rsplit("/", 1)[1] for p in master.playlists] == ["index.m3u8"] * 3
    for row in Rendition.objects.filter(track=track):
        check_media_playlist(folder.parent / row.profile, fmp4=True, source_ms=track.duration_ms)
        assert master.playlists[["aac-64", "aac-128", "aac-256"].index(row.profile)].stream_info.bandwidth == (
            row.peak_bitrate_bps
        )


def test_a_growing_run_that_fails_withdraws_what_it_published(
    tmp_path: Path, process_env, django_capture_on_commit_callbacks
):
    track = long_track(tmp_path)
    worker = procfile_worker_start("interactive", process_env)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.renditions_request(track_ids=[track.pk], interactive=True)
        # Watched on disk (a master request would queue the track again once it failed, and retry it).
        key = track_rendition_key(track=track)[1]
        key_folder = settings.RENDITIONS_ROOT / str(track.pk) / key
        storage = RenditionStorage.from_settings()
        wait_for(
            lambda: storage.growing_started(track.pk, key, ["aac-64", "aac-128", "aac-256"]),
            timeout_s=60,
            what="first segments",
        )
        assert list(key_folder.glob("*/seg00000.m4s"))
        # ffmpeg dies mid-run (as on a decoder crash or an OOM kill of it alone).
        [ffmpeg] = [p for p in psutil.Process(worker.pid).children(recursive=True) if "ffmpeg" in p.name()]
        ffmpeg.kill()
        wait_for(lambda: statuses(track.pk) == {RenditionStatus.FAILED}, timeout_s=30, what="failed")
    finally:
        worker_stop(worker)
    assert not key_folder.exists()  # withdrawn: every URL of it answers 404, no byte of a broken run stays
    assert all("ffmpeg exited with -9" in r.error for r in Rendition.objects.filter(track=track))
    assert master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None) is None
