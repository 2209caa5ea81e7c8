"""Chunked transcodes (issue 18, "start anywhere"): a long track made in segment-aligned chunks, the one at the
listener's position first; its live playlists list what exists in order; the finished rendition decodes to the
source's duration with seamless joins (decoded PCM against the decoded source at every join); a failed chunk
withdraws nothing of the others. Real ffmpeg, and a real Celery worker for the dispatch."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import m3u8
import pytest
from django.conf import settings

from apps.library.models import TrackLoudness
from apps.streaming import services as streaming_services
from apps.streaming.chunks import ChunkPlan, chunk_plan, live_playlist
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import file_path, track_chunk_plan, track_rendition_key, track_source_files
from apps.streaming.services import master_playlist_for_playback, renditions_request
from apps.streaming.services.analysis import LOUDNESS_TASK, track_loudness_measure
from apps.streaming.services.chunked import chunk_run
from apps.streaming.storage import RenditionStorage
from tests.conftest import broker_queue_messages, wait_for
from tests.factories import LibraryFactory
from tests.pipeline import scan_job
from tests.streaming.hls_checks import check_media_playlist, decoded_seconds
from tests.streaming.seams import joins_check, rendition_file
from tests.streaming.workers import procfile_worker_start, worker_stop

SECONDS = 100
PROFILES = ["aac-64", "aac-128"]


def test_the_plan_cuts_whole_frames_and_starts_at_the_listener():
    plan = chunk_plan(duration_ms=30 * 60_000, sample_rate_hz=44100, segment_seconds=6, chunk_seconds=300)
    assert plan == ChunkPlan(sample_rate_hz=44100, frames_per_segment=258, segments_per_chunk=50, chunk_count=6)
    assert plan.chunk_of(25 * 60_000) == 5 and plan.chunk_of(0) == 0 and plan.chunk_of(10**9) == 5
    assert plan.order(3) == [3, 4, 5, 0, 1, 2]
    # Short tracks are one run; a last chunk under a quarter of one is merged into the one before.
    assert chunk_plan(duration_ms=449_000, sample_rate_hz=44100, segment_seconds=6, chunk_seconds=300) is None
    assert chunk_plan(duration_ms=650_000, sample_rate_hz=48000, segment_seconds=6, chunk_seconds=300).chunk_count == 2
    assert chunk_plan(duration_ms=10**6, sample_rate_hz=44100, segment_seconds=6, chunk_seconds=0) is None


def test_the_live_playlist_grows_from_the_lead_chunk_only():
    plan = ChunkPlan(sample_rate_hz=44100, frames_per_segment=258, segments_per_chunk=2, chunk_count=3)
    args = {"lead": 1, "extension": "m4s", "init_name": "init.mp4", "last_durations": None}
    assert live_playlist(plan, present={0}, **args) is None  # the lead chunk has nothing yet
    text = live_playlist(plan, present={2, 3, 4}, **args)  # the last chunk's 4 is listed once 5 exists
    playlist = m3u8.loads(text)
    assert [(s.uri, s.gap_tag is not None) for s in playlist.segments] == [
        ("seg00000.m4s", True), ("seg00001.m4s", True), ("seg00002.m4s", False), ("seg00003.m4s", False),
    ]  # fmt: skip
    assert playlist.playlist_type == "event" and not playlist.is_endlist
    # A listener in the last chunk: its segment is listed as soon as the file holds a whole segment's frames.
    last = {**args, "lead": 2}
    assert live_playlist(plan, present={4}, **last) is None
    assert m3u8.loads(live_playlist(plan, present={4}, whole={4}, **last)).segments[4].gap_tag is None
    done = live_playlist(plan, present={0, 1, 2, 3, 4, 5}, **{**args, "last_durations": [5.990748, 1.5]})
    playlist = m3u8.loads(done)
    assert playlist.is_endlist and len(playlist.segments) == 6 and "GAP" not in done
    assert [round(s.duration, 6) for s in playlist.segments] == [5.990748] * 5 + [1.5]


def _noisy_source(path: Path) -> None:
    """Tone + pink noise: a dropped, repeated or clicking sample shows against it, and aligns only one way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-v", "error", "-y"]
        + ["-f", "lavfi", "-i", f"sine=f=440:d={SECONDS}:sample_rate=44100"]
        + ["-f", "lavfi", "-i", f"anoisesrc=d={SECONDS}:c=pink:a=0.2:r=44100"]
        + ["-filter_complex", "[0][1]amix=inputs=2,aformat=channel_layouts=stereo"]
        + ["-metadata", "title=long", "-c:a", "flac", str(path)],
        check=True,
    )


@pytest.fixture
def chunked_track(tmp_path: Path, settings):
    settings.TRANSCODE_CHUNK_SECONDS = 30
    settings.STREAMING_PROFILES = PROFILES
    media = tmp_path / "library"
    _noisy_source(media / "long.flac")
    library = LibraryFactory(root=media)
    scan_job(library)
    return library.tracks.get()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_chunks_in_any_order_make_a_seamless_rendition(chunked_track, tmp_path: Path):
    track = chunked_track
    ladder, key = track_rendition_key(track=track)
    plan = track_chunk_plan(ladder=ladder, files=track_source_files(track=track))
    assert ladder.chunk_seconds == 30 and plan is not None and plan.chunk_count == 4
    folder = settings.RENDITIONS_ROOT / str(track.pk) / key

    # The listener is at 70 s: chunk 2 first. Its segments are listed, those before it as gaps.
    assert chunk_run(track_id=track.pk, chunk=2, lead=2) == "published"
    live = m3u8.loads((folder / "aac-64" / "live.m3u8").read_text())
    assert [s.gap_tag is not None for s in live.segments] == [True] * 10 + [False] * 5
    assert live.playlist_type == "event" and not live.is_endlist
    assert master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None) is not None  # growing
    assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {RenditionStatus.RUNNING}

    for chunk in (3, 0, 1):
        assert chunk_run(track_id=track.pk, chunk=chunk, lead=2) == "published"
    assert chunk_run(track_id=track.pk, chunk=1, lead=2) == "already_ready"
    rows = Rendition.objects.filter(track=track)
    assert {r.status for r in rows} == {RenditionStatus.READY}
    # No chunk's run saw the whole track: the chunk that completed it queued one decode to measure its loudness.
    queued = broker_queue_messages(streaming_services.BULK_QUEUE)
    assert [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in queued] == [
        (LOUDNESS_TASK, [track.pk])
    ]
    assert not TrackLoudness.objects.filter(track=track).exists()
    assert track_loudness_measure(track_id=track.pk) is True
    loudness = TrackLoudness.objects.get(track=track)
    # Tone at -6 dBFS under pink noise: a level in the tens of LUFS below full scale, not silence, peaks under 0.
    assert -30 < loudness.integrated_lufs < -3 and loudness.true_peak_dbtp < 1.0
    assert track_loudness_measure(track_id=track.pk) is False  # measured: the same audio is not decoded again
    joins_s = [c * plan.chunk_frames * 1024 / 44100 - 1024 / 44100 for c in range(1, plan.chunk_count)]
    source = file_path(track_source_files(track=track)[0])
    for row in rows:
        playlist = check_media_playlist(folder / row.profile, fmp4=True, source_ms=track.duration_ms + 23)
        assert [s.uri for s in playlist.segments] == [f"seg{i:05d}.m4s" for i in range(len(playlist.segments))]
        live = m3u8.loads((folder / row.profile / "live.m3u8").read_text())
        assert live.is_endlist and [s.uri for s in live.segments] == [s.uri for s in playlist.segments]
        joined = rendition_file(folder / row.profile, tmp_path / f"{row.profile}.mp4")
        # ffmpeg decodes it to the source's length (+ the priming frame its segments start with).
        assert abs(_decoded_s(joined) - SECONDS) <= 0.5
        joins = joins_check(joined, source, joins_s)
        assert len(joins) == 3 and [j for j in joins if j.bad] == [], joins
        # The check can fail: the same rendition a millisecond off the source is off at every join.
        late = joins_check(joined, source, joins_s, offset=44)
        assert all(j.bad for j in late), late


def _decoded_s(path: Path) -> float:
    run = subprocess.run(
        [
            settings.FFMPEG_BINARY,
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-stats",
            "-i",
            str(path),
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return decoded_seconds(run.stderr)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_worker_makes_the_listeners_chunk_first(chunked_track, process_env, django_capture_on_commit_callbacks):
    track = chunked_track
    key = track_rendition_key(track=track)[1]
    folder = settings.RENDITIONS_ROOT / str(track.pk) / key
    worker = procfile_worker_start(
        "interactive", process_env, TRANSCODE_CHUNK_SECONDS="30", STREAMING_PROFILES=",".join(PROFILES)
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert renditions_request(track_ids=[track.pk], interactive=True, position_ms=75_000) == 1
        wait_for(lambda: (folder / "aac-64" / "live.m3u8").exists(), timeout_s=60, what="the live playlist")
        assert RenditionStorage.from_settings().chunk_lead(track.pk, key) == 2
        first = m3u8.loads((folder / "aac-64" / "live.m3u8").read_text())
        assert first.segments[10].gap_tag is None and first.segments[0].gap_tag is not None
        # A second listener joins the run.
        with django_capture_on_commit_callbacks(execute=True):
            assert renditions_request(track_ids=[track.pk], interactive=True, position_ms=0) == 0
        wait_for(
            lambda: set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"ready"},
            timeout_s=120,
            what="ready",
        )
    finally:
        worker_stop(worker)
    done = sorted((folder / ".chunks").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert [p.name for p in done] == ["00002.json", "00003.json", "00000.json", "00001.json"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_failed_chunk_keeps_the_others_and_says_where(chunked_track, monkeypatch):
    track = chunked_track
    key = track_rendition_key(track=track)[1]
    folder = settings.RENDITIONS_ROOT / str(track.pk) / key
    assert chunk_run(track_id=track.pk, chunk=0, lead=0) == "published"
    monkeypatch.setattr(settings, "FFMPEG_BINARY", "/bin/false")
    assert chunk_run(track_id=track.pk, chunk=1, lead=0) == "failed"
    rows = Rendition.objects.filter(track=track)
    assert {r.status for r in rows} == {RenditionStatus.FAILED}
    assert all(r.error.startswith("chunk 1 (0:00:29-0:00:59): ffmpeg exited with 1") for r in rows)
    assert len(list((folder / "aac-64").glob("seg*.m4s"))) == 5  # chunk 0's stay, and stay listed
    live = m3u8.loads((folder / "aac-64" / "live.m3u8").read_text())
    assert [s.uri for s in live.segments] == [f"seg{i:05d}.m4s" for i in range(5)]
    assert master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None) is not None
