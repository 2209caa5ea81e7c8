"""hls.js in a real Chromium plays a growing rendition from its start, and from a resume point deep in a long
book made in chunks (issue 18): the page's own hls.js (the vendored build the web player loads) on the master
playlist of a track never transcoded, served while the Procfile's interactive worker is still making it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.library.models import Track
from apps.library.services import library_scan
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import track_rendition_key
from apps.streaming.services import stream_start
from apps.streaming.storage import RenditionStorage
from tests.audio import make_audio
from tests.conftest import wait_for
from tests.e2e.browser import needs_chromium
from tests.factories import LibraryFactory, UserFactory
from tests.streaming.hls_checks import decoded_seconds
from tests.streaming.workers import procfile_worker_start, worker_stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]

SECONDS = 300
PLAY = """
async ([url, startPosition]) => {
  const audio = document.createElement("audio");
  audio.muted = true;
  document.body.appendChild(audio);
  window.hlsErrors = [];
  const hls = new Hls({ enableWorker: false, startPosition });
  hls.on(Hls.Events.ERROR, (_event, data) => { if (data.fatal) window.hlsErrors.push(data.details); });
  hls.loadSource(url);
  hls.attachMedia(audio);
  window.testAudio = audio;
  await new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
  await audio.play();
}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[None]:
    """The browser fixture's anchor (tests/e2e/conftest.py); the server is pytest-django's live_server.
    Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls from a thread with
    a running loop; ours are plain blocking calls between browser steps."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield None
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def statuses(track: Track) -> set[str]:
    return set(Rendition.objects.filter(track=track).values_list("status", flat=True))


def test_hlsjs_plays_a_growing_rendition_from_the_start(
    world, live_server, open_page, watch, tmp_path: Path, process_env, django_capture_on_commit_callbacks
):
    media = tmp_path / "library"
    make_audio(media / "long.flac", seconds=SECONDS, tags={"title": "long"})
    library = LibraryFactory(root=media)
    library_scan(library=library)
    track = library.tracks.get()
    listener = UserFactory(is_staff=True)
    worker = procfile_worker_start("interactive", process_env)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            decision = stream_start(user=listener, track=track, codecs=["aac"], max_bitrate_kbps=None)
        assert decision.mode == "hls" and not decision.ready  # queued, growing
        key = track_rendition_key(track=track)[1]
        profiles = [r.profile for r in Rendition.objects.filter(track=track)]
        storage = RenditionStorage.from_settings()
        wait_for(lambda: storage.growing_started(track.pk, key, profiles), timeout_s=60, what="first segments")
        assert statuses(track) == {RenditionStatus.RUNNING}

        page = open_page()
        page.goto(f"{live_server.url}/login/")
        page.add_script_tag(url=f"{live_server.url}/static/web/vendor/hls.js/hls.min.js")
        page.evaluate(PLAY, [f"{live_server.url}{decision.url}", -1])
        page.wait_for_function("() => window.testAudio.currentTime > 2", timeout=30_000)
        # It played while the rendition was still being made, from its live playlists.
        assert statuses(track) == {RenditionStatus.RUNNING}
        live_loads = [e for e in watch.network if e.url.endswith("/live.m3u8")]
        assert live_loads and all(e.status == 200 for e in live_loads)
        assert not [e for e in watch.network if e.url.endswith("/index.m3u8")]
        assert page.evaluate("() => window.hlsErrors") == []
        wait_for(lambda: statuses(track) == {RenditionStatus.READY}, timeout_s=120, what="ready")
        # Still playing after the run ended (the live playlist got its EXT-X-ENDLIST), past what it had.
        played = page.evaluate("() => window.testAudio.currentTime")
        page.wait_for_function("(t) => window.testAudio.currentTime > t + 2", arg=played, timeout=30_000)
        assert page.evaluate("() => [window.testAudio.paused, window.testAudio.error]") == [False, None]
        assert page.evaluate("() => window.hlsErrors") == []
    finally:
        worker_stop(worker)


BOOK_SECONDS = 240
RESUME_S = 200  # in the 7th of 8 chunks of 30 s


def test_hlsjs_resumes_deep_in_a_book_made_in_chunks(
    world, live_server, open_page, watch, tmp_path: Path, process_env, settings, django_capture_on_commit_callbacks
):
    settings.TRANSCODE_CHUNK_SECONDS = 30
    media = tmp_path / "library"
    make_audio(media / "book.flac", seconds=BOOK_SECONDS, tags={"title": "book"})
    library = LibraryFactory(root=media)
    library_scan(library=library)
    track = library.tracks.get()
    listener = UserFactory(is_staff=True)
    worker = procfile_worker_start("interactive", process_env, TRANSCODE_CHUNK_SECONDS="30")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            decision = stream_start(
                user=listener, track=track, codecs=["aac"], max_bitrate_kbps=None, position_ms=RESUME_S * 1000
            )
        assert decision.mode == "hls" and not decision.ready and "position_ms=200000" in decision.url
        ladder, key = track_rendition_key(track=track)
        assert ladder.chunk_seconds == 30
        storage = RenditionStorage.from_settings()
        profiles = [p.name for p in ladder.profiles]
        wait_for(lambda: storage.growing_started(track.pk, key, profiles), timeout_s=60, what="first segments")
        assert storage.chunk_lead(track.pk, key) == 6

        page = open_page()
        page.goto(f"{live_server.url}/login/")
        page.add_script_tag(url=f"{live_server.url}/static/web/vendor/hls.js/hls.min.js")
        page.evaluate(PLAY, [f"{live_server.url}{decision.url}", RESUME_S])
        page.wait_for_function(f"() => window.testAudio.currentTime > {RESUME_S + 2}", timeout=30_000)
        assert page.evaluate("() => window.hlsErrors") == []
        # It started where the listener was: nothing before the resume point's chunk was fetched.
        fetched = sorted(int(e.url.rsplit("seg", 1)[1][:5]) for e in watch.network if "/seg" in e.url)
        assert fetched and min(fetched) >= 30 and all(e.status == 200 for e in watch.network if "/seg" in e.url)
        wait_for(lambda: statuses(track) == {RenditionStatus.READY}, timeout_s=180, what="ready")
        played = page.evaluate("() => window.testAudio.currentTime")
        page.wait_for_function("(t) => window.testAudio.currentTime > t + 2", arg=played, timeout=30_000)
        assert page.evaluate("() => [window.testAudio.paused, window.testAudio.error]") == [False, None]
        assert page.evaluate("() => window.hlsErrors") == []
    finally:
        worker_stop(worker)
    # The finished rendition, as ffmpeg decodes it: the book's length (+ its first AAC frame, 23 ms).
    index = settings.RENDITIONS_ROOT / str(track.pk) / key / profiles[0] / "index.m3u8"
    run = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-stats", "-i", str(index)]
        + ["-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert abs(decoded_seconds(run.stderr) - BOOK_SECONDS) <= 0.5
