from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from apps.library.models import ScanJob
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import track_rendition_key
from apps.streaming.services import (
    TMP_DIR_NAME,
    rendition_transcode,
    renditions_housekeeping,
    renditions_request,
)
from apps.streaming.transcoder import ffmpeg_run, peak_bitrate_bps
from tests.audio import make_audio
from tests.conftest import broker_queue_messages, hand_off
from tests.factories import LibraryFactory
from tests.pipeline import book_track, music_track, ready, scan, scan_job
from tests.streaming.hls_checks import check_media_playlist, rendition_dir

pytestmark = pytest.mark.django_db


def test_one_run_publishes_every_profile(media: Path):
    track = music_track(media, seconds=14)
    rows = ready(track)
    assert sorted(r.profile for r in rows) == ["aac-128", "aac-256", "aac-64"]
    for row in rows:
        folder = rendition_dir(row)
        assert folder == settings.RENDITIONS_ROOT / str(track.pk) / row.rendition_key / row.profile
        playlist = check_media_playlist(folder, fmp4=True, source_ms=track.duration_ms)
        assert row.segment_count == len(playlist.segments) == 3
        assert row.size_bytes == sum(f.stat().st_size for f in folder.iterdir() if f.name != "index.m3u8")
        nominal = int(row.profile.split("-")[1]) * 1000
        assert 0.7 * nominal < row.average_bitrate_bps <= row.peak_bitrate_bps < 1.5 * nominal
        assert abs(row.duration_ms - track.duration_ms) <= 500
        assert row.codecs == "mp4a.40.2" and row.transcode_ms > 0 and row.attempts == 1 and row.error == ""
    assert not any((settings.RENDITIONS_ROOT / TMP_DIR_NAME).iterdir())
    # Idempotent: a second run finds everything ready and does nothing.
    assert rendition_transcode(track_id=track.pk).outcome == "already_ready"


def test_mpegts_segments(media: Path, settings):
    settings.HLS_SEGMENT_FORMAT = "mpegts"
    track = music_track(media, seconds=8)
    for row in ready(track):
        assert row.segment_format == "mpegts"
        check_media_playlist(rendition_dir(row), fmp4=False, source_ms=track.duration_ms)


def test_lossless_tier_only_for_lossless_sources(media: Path, settings):
    settings.STREAMING_PROFILES = ["aac-128", "flac"]
    make_audio(media / "lossless.flac", seconds=4, tags={"title": "lossless"})
    track = music_track(media, "lossy.mp3", seconds=4)
    flac = track.library.tracks.get(title="lossless")
    assert {r.profile: r.codecs for r in ready(flac)} == {"aac-128": "mp4a.40.2", "flac": "fLaC"}
    assert [r.profile for r in ready(track)] == ["aac-128"]


def test_multi_file_book_is_one_timeline(media: Path):
    track = book_track(media, parts=3, seconds=5)
    for row in ready(track):
        check_media_playlist(rendition_dir(row), fmp4=True, source_ms=15_000)


def test_rendition_key_follows_source_and_profiles(media: Path, settings):
    track = music_track(media)
    _, key = track_rendition_key(track=track)
    settings.STREAMING_PROFILES = ["aac-64"]
    assert track_rendition_key(track=track)[1] != key
    settings.STREAMING_PROFILES = ["aac-64", "aac-128", "aac-256"]
    assert track_rendition_key(track=track)[1] == key
    make_audio(media / "song.mp3", seconds=3, frequency=900, tags={"title": "song.mp3"})
    scan(track.library)
    track.refresh_from_db()
    assert track_rendition_key(track=track)[1] != key


def test_a_second_worker_on_the_same_track_backs_off(media: Path):
    track = music_track(media, seconds=3)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [(0x5256 << 40) | track.pk])
        assert rendition_transcode(track_id=track.pk).outcome == "busy"
        assert not Rendition.objects.filter(track=track, status=RenditionStatus.RUNNING).exists()
    finally:
        other.close()  # the server drops the lock with the session, as when a worker dies
    assert rendition_transcode(track_id=track.pk).outcome == "published"


def test_corrupt_file_fails_with_ffmpeg_error_and_bounded_retries(
    media: Path, settings, django_capture_on_commit_callbacks
):
    track = music_track(media, seconds=3)
    # Still the size and mtime the scan saw, but no longer audio.
    path = media / "song.mp3"
    stat = path.stat()
    path.write_bytes(b"\0garbage" * (stat.st_size // 8) + b"\0" * (stat.st_size % 8))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = rendition_transcode(track_id=track.pk)
    assert result.outcome == "failed"
    rows = list(Rendition.objects.filter(track=track))
    assert {r.status for r in rows} == {"failed"} and {r.attempts for r in rows} == {1}
    assert "ffmpeg exited with" in rows[0].error and "song.mp3" in rows[0].error
    assert not (settings.RENDITIONS_ROOT / str(track.pk)).exists()
    assert not any((settings.RENDITIONS_ROOT / TMP_DIR_NAME).iterdir())
    # On demand it is tried again, until TRANSCODE_MAX_ATTEMPTS; then only an admin's Retry queues it.
    settings.TRANSCODE_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        assert renditions_request(track_ids=[track.pk], interactive=True) == 1
    assert rendition_transcode(track_id=track.pk).outcome == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        assert renditions_request(track_ids=[track.pk], interactive=True) == 0
    assert Rendition.objects.filter(track=track, attempts=2, status="failed").count() == 3


def test_source_changed_during_transcode_is_discarded(media: Path, settings):
    track = music_track(media, seconds=20)
    path = media / "song.mp3"

    def touch(fraction: float) -> None:
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    result = rendition_transcode(track_id=track.pk, progress=touch)
    assert result.outcome == "source_changed"
    assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"pending"}
    assert not (settings.RENDITIONS_ROOT / str(track.pk)).exists()
    assert not any((settings.RENDITIONS_ROOT / TMP_DIR_NAME).iterdir())
    assert ScanJob.objects.filter(library=track.library, status="queued").exists()  # the rescan re-keys it


@pytest.fixture
def tiny_disk(tmp_path: Path, settings):
    """A real full disk: a 300 kB tmpfs as the renditions root (needs root, as in CI)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], check=True)
    settings.RENDITIONS_ROOT = mount
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_fails_and_cleans_up(media: Path, tiny_disk: Path):
    track = music_track(media, seconds=60)
    result = rendition_transcode(track_id=track.pk)
    assert result.outcome == "failed"
    row = Rendition.objects.filter(track=track).first()
    assert row.status == "failed" and row.error
    assert not (tiny_disk / str(track.pk)).exists()
    assert not any((tiny_disk / TMP_DIR_NAME).iterdir())


def test_scan_queues_new_and_changed_tracks_on_bulk(media: Path, settings, django_capture_on_commit_callbacks):
    from apps.streaming import services

    settings.TRANSCODE_AFTER_SCAN = True
    make_audio(media / "a.mp3", seconds=2, tags={"title": "a"})
    make_audio(media / "b.mp3", seconds=2, tags={"title": "b"})
    library = LibraryFactory(root=media)
    with django_capture_on_commit_callbacks(execute=True):
        scan_job(library)
    assert hand_off(django_capture_on_commit_callbacks) == [sorted(library.tracks.values_list("pk", flat=True))]
    messages = broker_queue_messages(services.BULK_QUEUE)
    assert sorted(m["headers"]["argsrepr"] for m in messages) == sorted(
        f"[{pk}]" for pk in library.tracks.values_list("pk", flat=True)
    )
    assert all(m["headers"]["task"] == services.TRANSCODE_TASK for m in messages)
    assert all(m["headers"]["timelimit"][0] > 300 for m in messages)
    # An unchanged rescan queues nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        scan_job(library)
    assert hand_off(django_capture_on_commit_callbacks) == []
    assert len(broker_queue_messages(services.BULK_QUEUE)) == 2


def test_housekeeping_removes_unreferenced_folders_and_requeues_orphans(media: Path, settings):
    track = music_track(media, seconds=3)
    old = ready(track)[0].rendition_key
    leftover = settings.RENDITIONS_ROOT / TMP_DIR_NAME / f"{track.pk}-{old}-dead"
    leftover.mkdir(parents=True)
    settings.STREAMING_PROFILES = ["aac-64"]  # a new ladder: a new key, the old folder unreferenced
    new = ready(track)[0].rendition_key
    assert new != old
    stray = settings.RENDITIONS_ROOT / "999999" / "0123456789abcdef"
    stray.mkdir(parents=True)
    result = renditions_housekeeping()
    assert result.rows_deleted == 3
    assert sorted(p.name for p in (settings.RENDITIONS_ROOT / str(track.pk)).iterdir()) == [new]
    assert not leftover.exists() and not stray.parent.exists()
    assert list(Rendition.objects.filter(track=track).values_list("rendition_key", flat=True)) == [new]


def test_peak_bitrate_is_rfc_8216():
    # Windows between 3 and 9 s of a 6 s target: the short last segment only counts with its neighbour.
    assert peak_bitrate_bps([6000, 6000, 100], [6.0, 6.0, 0.1], target_s=6) == 8000
    assert peak_bitrate_bps([6000, 9000], [6.0, 2.0], target_s=6) == 15000


def test_bulk_runs_are_niced_under_interactive_ones(tmp_path: Path, settings):
    """What ffmpeg_run starts for bulk work runs TRANSCODE_BULK_NICE steps nicer than the worker (a listener's
    cold start takes the CPU first); interactive runs as the worker does. `nice` prints its own niceness."""
    settings.TRANSCODE_BULK_NICE = 7
    own = os.nice(0)
    for background, expected in ((False, own), (True, min(19, own + 7))):
        out = tmp_path / f"{background}.txt"
        ffmpeg_run(["sh", "-c", f"nice > {out}"], duration_ms=1, background=background)
        assert int(out.read_text()) == expected
