"""Loudness, silences and lyrics in the web player (issue 21), in a real Chromium against a live server: the Web
Audio gain node is set to the track's gain (album's when the album plays in order), "skip silence" jumps a
generated 2 s gap (the audio element never plays it) and counts the time saved, synced lyrics follow playback.
The console stays clean under the CSP (script-src 'self')."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from playwright.sync_api import Page, expect

from apps.accounts.models import SignInAttempt
from apps.library.models import Library, LibraryAccess, LibraryKind, Track
from apps.library.services import library_scan
from apps.playback.models import PlaybackProgress, PlaybackSession, PlayQueue
from apps.streaming.services import rendition_transcode
from tests.e2e.browser import PASSWORD, api_json, live_site, needs_chromium, sign_in, wait_playing_past
from tests.factories import LibraryFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db, needs_chromium]
RATE = 48_000


@dataclass
class World:
    base_url: str
    renditions_root: Path
    loud: int
    quiet: int
    album: int
    episode: int


def _pcm_file(path: Path, pcm: np.ndarray, tags: dict[str, str], codec: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [django_settings.FFMPEG_BINARY, "-v", "error", "-y", "-f", "f32le", "-ar", str(RATE), "-ac", "1"]
    command += ["-i", "-"]
    for name, value in tags.items():
        command += ["-metadata", f"{name}={value}"]
    subprocess.run([*command, "-c:a", codec, str(path)], input=pcm.astype("<f4").tobytes(), check=True)


def _build(root: Path) -> dict[str, int]:
    t = np.arange(20 * RATE) / RATE  # long enough not to end while a loaded machine runs the test
    album = {"album": "Levels", "album_artist": "Tester", "artist": "Tester"}
    loud, quiet = 0.5 * np.sin(2 * np.pi * 997 * t), 0.02 * np.sin(2 * np.pi * 997 * t)
    _pcm_file(root / "music" / "01 loud.flac", loud, {"title": "Loud", "track": "1", **album}, "flac")
    _pcm_file(root / "music" / "02 quiet.flac", quiet, {"title": "Quiet", "track": "2", **album}, "flac")
    (root / "music" / "01 loud.lrc").write_text("[00:00.00]First line\n[00:01.50]Second line\n[00:03.00]Third line\n")
    # Speech-like: 1.5 s on, 0.3 s pause, 1.5 s on, a 2 s gap (3.3-5.3 s), then 4 s on.
    period = np.arange(int(9.3 * RATE)) / RATE
    on = (period < 1.5) | ((period >= 1.8) & (period < 3.3)) | (period >= 5.3)
    speech = 0.2 * np.sin(2 * np.pi * 440 * period) * on
    _pcm_file(root / "show" / "Show" / "episode.flac", speech, {"title": "Episode", "album": "Show"}, "flac")
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=root / "music")
    show = LibraryFactory(name="Podcasts", kind=LibraryKind.PODCAST, root=root / "show")
    for library in (music, show):
        library_scan(library=library)
    tracks = {track.title: track for track in Track.objects.all()}
    for track in tracks.values():
        assert rendition_transcode(track_id=track.pk).outcome == "published"
    return {
        "loud": tracks["Loud"].pk,
        "quiet": tracks["Quiet"].pk,
        "album": tracks["Loud"].album_id,
        "episode": tracks["Episode"].pk,
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("loudness-player")

    def build() -> dict[str, int]:
        built = _build(root / "media")
        listener = get_user_model().objects.create_user("listener", password=PASSWORD)
        for library in Library.objects.all():
            LibraryAccess.objects.create(user=listener, library=library)
        return built

    site = live_site(
        django_db_blocker,
        root,
        build,
        usernames=["listener"],
        RENDITIONS_ROOT=root / "renditions",
        STREAMING_PROFILES=["aac-64", "aac-128"],
    )
    with site as (base_url, built):
        yield World(base_url=base_url, renditions_root=root / "renditions", **built)


@pytest.fixture(autouse=True)
def _per_test(world, _transcode_queues, settings, django_db_blocker) -> Iterator[None]:
    settings.RENDITIONS_ROOT = world.renditions_root
    yield
    # Sign-ins are counted per address: none of ours may be left to the next module's budget (and no session
    # or progress row either), on a connection of its own (this thread's is inside the test's transaction).
    with django_db_blocker.unblock():
        own = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with own.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{PlaybackSession._meta.db_table}" SET ended_at = now(), state = %s '
                    "WHERE ended_at IS NULL",
                    ["stopped"],
                )
                for model in (PlayQueue, PlaybackProgress, SignInAttempt):
                    cursor.execute(f'DELETE FROM "{model._meta.db_table}"')
        finally:
            own.close()


def wait_gain(page: Page, value: float) -> float:
    page.wait_for_function(
        "(v) => window.revengeLoudness.gainValue !== null && Math.abs(window.revengeLoudness.gainValue - v) < 1e-4",
        arg=value,
        timeout=15_000,
    )
    return page.evaluate("() => window.revengeLoudness.gainValue")


def test_the_gain_node_is_the_tracks_gain_and_the_albums_in_order(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.loud}/")
    loudness = api_json(page, world.base_url, f"/api/v1/tracks/{world.loud}/loudness")
    assert loudness["origin"] == "measured"
    # 997 Hz at 0.5 (-6 dBFS) in mono: about -9 LUFS, so about -9 dB to -18 LUFS.
    assert loudness["track_gain_db"] == pytest.approx(-9.0, abs=0.3)
    page.locator("main .album-head [data-play]").click()
    wait_playing_past(page, 0.5)
    # This track's page: the queue is the track alone, so its own gain (auto mode).
    assert wait_gain(page, 10 ** (loudness["track_gain_db"] / 20)) == pytest.approx(
        math.pow(10, loudness["track_gain_db"] / 20), abs=1e-4
    )
    # Lyrics follow playback: by 1.6 s the second line is the current one; a click seeks to the third.
    page.wait_for_function("() => document.querySelector('[data-audio]').currentTime > 1.7", timeout=15_000)
    expect(page.locator('[data-lyrics-list] [aria-current="true"]')).to_have_text("Second line")
    page.locator("[data-panel=panel-lyrics]").click()
    page.get_by_role("button", name="Third line").click()
    page.wait_for_function("() => document.querySelector('[data-audio]').currentTime >= 3.0")
    expect(page.locator('[data-lyrics-list] [aria-current="true"]')).to_have_text("Third line")

    # The album played in order: the album's gain (gated over both tracks: the loud one's level).
    page.goto(f"{world.base_url}/albums/{world.album}/")
    page.get_by_role("button", name="Play album").click()
    wait_playing_past(page, 0.5)
    album_gain = api_json(page, world.base_url, f"/api/v1/tracks/{world.loud}/loudness")["album_gain_db"]
    assert album_gain == pytest.approx(loudness["track_gain_db"], abs=0.1)
    wait_gain(page, 10 ** (album_gain / 20))
    assert page.evaluate("() => window.revengeLoudness.albumInOrder") is True
    page.locator("[data-gain-mode]").select_option("off")
    wait_gain(page, 1.0)


def test_skip_silence_jumps_the_generated_gap(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.episode}/")
    silences = api_json(page, world.base_url, f"/api/v1/tracks/{world.episode}/loudness")["silences"]
    assert len(silences) == 1 and abs(silences[0][0] - 3300) <= 100 and abs(silences[0][1] - 5300) <= 100
    page.locator("[data-skip-silence]").check()
    page.locator("main .album-head [data-play]").click()
    wait_playing_past(page, 6.0, timeout_ms=20_000)
    saved = page.evaluate("() => window.revengeLoudness.savedS")
    assert 1.0 <= saved <= 2.0, saved  # the 2 s gap less what is kept at its edges and the first moments
    expect(page.locator("[data-silence-saved]")).to_contain_text("s saved")
    # The audio element never played the middle of the gap: it was jumped, not played fast.
    played = page.evaluate(
        "() => { const r = document.querySelector('[data-audio]').played; const out = [];"
        " for (let i = 0; i < r.length; i++) out.push([r.start(i), r.end(i)]); return out; }"
    )
    assert not any(start <= 4.3 <= end for start, end in played), played
    # Progress is the true position in the episode, after the jump (not the time listened).
    page.locator("#player").get_by_role("button", name="Pause", exact=True).click()
    here_ms = page.evaluate("() => document.querySelector('[data-audio]').currentTime") * 1000
    for _ in range(100):
        progress = api_json(page, world.base_url, f"/api/v1/progress/{world.episode}")
        if progress.get("position_ms", 0) >= 6000:
            break
        page.wait_for_timeout(100)
    assert abs(progress["position_ms"] - here_ms) <= 300, (progress, here_ms)
