"""The web player in a real Chromium (Playwright), against a live server with a generated library whose
renditions are built once for the module: HLS through hls.js, direct play with Range, resume, conflicts
between devices, chapters, grants, and screenshots for the README.

Every page is held to the Content-Security-Policy: a violation (or an uncaught script error) fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from playwright.sync_api import Page, expect

from apps.accounts.models import SignInAttempt
from apps.library.models import Album, Library, LibraryAccess, LibraryKind, Track
from apps.library.services import library_scan
from apps.playback.models import Bookmark, PlaybackProgress, PlaybackSession, PlayQueue
from apps.streaming.services import rendition_transcode
from tests.audio import make_audio
from tests.e2e.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    api_json,
    audio_time,
    live_site,
    lossless_noise,
    mp3_tone,
    needs_chromium,
    screenshot,
    sign_in,
    wait_playing_past,
)
from tests.factories import LibraryFactory

pytestmark = [
    pytest.mark.slow,
    # The library is built once for the module, outside any test (see `world`). This mark has the test
    # database created; the transaction it wraps each test in is the test thread's only, and stays empty.
    pytest.mark.django_db,
    needs_chromium,
]


@dataclass
class World:
    base_url: str
    renditions_root: Path
    noise: int  # FLAC, 24 s: HLS
    hum: int  # AAC in .m4a, 16 s: direct play
    long_tone: int  # MP3 at 256 kbps, 5 min (9.6 MB): direct play with Range
    album: int
    book: int  # three MP3 parts of 8 s: one timeline over HLS, a chapter per part
    books: int  # the audiobook library, not granted to "outsider"
    series: int
    chapter_starts_ms: list[int]


def _build_library(root: Path) -> dict[str, int | list[int]]:
    music_dir, books_dir = root / "music", root / "books"
    album = "Field Recordings"
    lossless_noise(music_dir / "01 Pink Horizon.flac", seconds=24, title="Pink Horizon", artist="The Generators",
                   album=album, number=1)  # fmt: skip
    make_audio(music_dir / "02 Low Hum.m4a", seconds=16, frequency=220,
               tags={"title": "Low Hum", "artist": "The Generators", "album_artist": "The Generators",
                     "album": album, "track": "2", "genre": "Drone", "date": "2024"})  # fmt: skip
    mp3_tone(music_dir / "singles" / "Long Tone.mp3", seconds=300, kbps=256, title="Long Tone",
             artist="Sine Ensemble", album="Singles")  # fmt: skip
    for part in range(1, 4):
        make_audio(books_dir / "A. Writer" / "The First Wave" / f"{part:02d}.mp3", seconds=8, frequency=300 + 60 * part,
                   tags={"title": f"Part {part}", "album": "The First Wave", "artist": "A. Writer",
                         "grouping": "Sine Saga"})  # fmt: skip
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=music_dir)
    books = LibraryFactory(name="Audiobooks", kind=LibraryKind.AUDIOBOOK, root=books_dir)
    for library in (music, books):
        library_scan(library=library)
    tracks = {track.title: track for track in Track.objects.all()}
    for title in ("Pink Horizon", "Low Hum", "The First Wave"):
        assert rendition_transcode(track_id=tracks[title].pk).outcome == "published"
    book = tracks["The First Wave"]
    return {
        "noise": tracks["Pink Horizon"].pk,
        "hum": tracks["Low Hum"].pk,
        "long_tone": tracks["Long Tone"].pk,
        "album": Album.objects.get(title=album).pk,
        "book": book.pk,
        "books": books.pk,
        "series": book.album_id,
        "chapter_starts_ms": list(book.chapters.order_by("index").values_list("start_ms", flat=True)),
        "music": music.pk,
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("web-player")

    def build() -> dict:
        built = _build_library(root / "media")
        users = get_user_model().objects
        listener = users.create_user("listener", password=PASSWORD)
        outsider = users.create_user("outsider", password=PASSWORD)
        for library in Library.objects.all():
            LibraryAccess.objects.create(user=listener, library=library)
        LibraryAccess.objects.create(user=outsider, library_id=built.pop("music"))
        return built

    site = live_site(
        django_db_blocker,
        root,
        build,
        usernames=["listener", "outsider"],
        RENDITIONS_ROOT=root / "renditions",
        # Two rungs are enough for an adaptive stream, and a third of the transcoding time is saved.
        STREAMING_PROFILES=["aac-64", "aac-128"],
    )
    with site as (base_url, built):
        yield World(base_url=base_url, renditions_root=root / "renditions", **built)


@pytest.fixture(autouse=True)
def _per_test(world, _transcode_queues, settings, django_db_blocker) -> Iterator[None]:
    """The module's renditions (tests/conftest.py points RENDITIONS_ROOT at each test's own folder), and
    no open session, queue, bookmark or counted sign-in of one test left for the next (progress is in each
    test's own Redis key space already)."""
    settings.RENDITIONS_ROOT = world.renditions_root
    yield
    # On a connection of its own: this thread's is inside the test's transaction, which is rolled back.
    with django_db_blocker.unblock():
        own = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with own.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{PlaybackSession._meta.db_table}" SET ended_at = now(), state = %s '
                    "WHERE ended_at IS NULL",
                    ["stopped"],
                )
                for model in (PlayQueue, Bookmark, PlaybackProgress, SignInAttempt):
                    cursor.execute(f'DELETE FROM "{model._meta.db_table}"')
        finally:
            own.close()


def play_this(page: Page) -> None:
    """The Play (or Resume) button of a track's page."""
    page.locator("main .album-head [data-play]").click()


def player_button(page: Page, name: str):
    return page.locator("#player").get_by_role("button", name=name, exact=True)


def progress_of(page: Page, world: World, track_id: int) -> dict:
    return api_json(page, world.base_url, f"/api/v1/progress/{track_id}")


def wait_progress(page: Page, world: World, track_id: int, predicate, what: str) -> dict:
    """Polls the progress API (what every other device reads) until `predicate` holds."""
    for _ in range(100):
        body = progress_of(page, world, track_id)
        if predicate(body):
            return body
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: progress is {body}")


# --- 1. Sign in, play over HLS ---------------------------------------------------------------------------------


def test_sign_in_open_a_track_and_play_it_over_hls(open_page, watch, world):
    page = open_page()
    sign_in(page, world.base_url, "listener")
    page.evaluate("() => { window.sameDocument = true; }")

    # Through the pages, as a person would: each click swaps <main> only.
    page.locator(".site-nav").get_by_role("link", name="Albums").click()
    page.get_by_role("link", name="Field Recordings").click()
    page.get_by_role("link", name="Pink Horizon").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pink Horizon")
    play_this(page)

    wait_playing_past(page, 3.0)
    assert page.evaluate("() => window.sameDocument") is True  # never reloaded: the player bar stayed
    assert page.evaluate("() => window.revengePlayer.mode") == "hls"
    segments = [e for e in watch.urls("/hls/") if e.url.split("?")[0].endswith((".m4s", ".ts"))]
    assert segments and all(e.status == 200 for e in segments)
    assert [e for e in watch.urls("/hls/") if e.url.endswith("index.m3u8")]
    assert not watch.urls(f"/api/v1/tracks/{world.noise}/file")  # the original was never fetched
    expect(player_button(page, "Pause")).to_be_visible()
    expect(page.locator("[data-now-title]")).to_have_text("Pink Horizon")
    # A session is open for this device, and the queue is the album from this track on.
    sessions = api_json(page, world.base_url, "/api/v1/sessions")["results"]
    device = page.evaluate("() => window.revengePlayer.deviceId")
    assert [(s["device_id"], s["track"]["id"]) for s in sessions] == [(device, world.noise)]
    assert page.evaluate("() => window.revengePlayer.queue") == [world.noise]  # this track's page: itself


def test_play_an_album_as_a_queue_next_and_previous(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/albums/{world.album}/")
    page.get_by_role("button", name="Play album").click()
    wait_playing_past(page, 0.5)
    device = page.evaluate("() => window.revengePlayer.deviceId")
    queue = api_json(page, world.base_url, f"/api/v1/queue?device_id={device}")
    assert (queue["track_ids"], queue["current_index"]) == ([world.noise, world.hum], 0)
    expect(page.locator(f'tr.is-current[data-track-row="{world.noise}"]')).to_have_count(1)

    player_button(page, "Next in queue").click()
    expect(page.locator("[data-now-title]")).to_have_text("Low Hum")
    wait_playing_past(page, 0.5)
    assert page.evaluate("() => window.revengePlayer.mode") == "direct"  # AAC at 64 kbps: as it is
    assert api_json(page, world.base_url, f"/api/v1/queue?device_id={device}")["current_index"] == 1
    player_button(page, "Queue").click()
    expect(page.locator("#panel-queue .panel-item")).to_have_text(["1. Pink Horizon", "2. Low Hum"])

    player_button(page, "Previous in queue").click()
    expect(page.locator("[data-now-title]")).to_have_text("Pink Horizon")
    wait_playing_past(page, 0.5)
    assert page.evaluate("() => window.revengePlayer.mode") == "hls"


def test_play_pressed_while_the_stored_queue_loads_wins_over_it(open_page, world):
    """A device's stored queue (one track) is restored as a page opens; "Play album" pressed before that
    answer arrives plays the album, and the late answer changes nothing (it used to replace the album by the
    stored queue and leave the player paused: the loudness browser test lost that race on a slow machine)."""
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.hum}/")
    page.locator("main .album-head [data-play]").click()
    wait_playing_past(page, 0.3)
    device = page.evaluate("() => window.revengePlayer.deviceId")
    assert api_json(page, world.base_url, f"/api/v1/queue?device_id={device}")["track_ids"] == [world.hum]

    held = []
    queue_url = re.compile(r"/api/v1/queue\?")
    page.route(queue_url, lambda route: held.append(route) if route.request.method == "GET" else route.continue_())
    page.goto(f"{world.base_url}/albums/{world.album}/")
    page.wait_for_function("() => window.revengePlayer !== undefined")
    while not held:  # the restore's GET, held back
        page.wait_for_timeout(20)
    page.get_by_role("button", name="Play album").click()
    wait_playing_past(page, 0.5)
    with page.expect_response(lambda response: "/api/v1/queue?" in response.url):
        held.pop().continue_()
    page.wait_for_timeout(300)  # what the late answer would have done, it has done by now
    assert page.evaluate("() => window.revengePlayer.queue") == [world.noise, world.hum]
    wait_playing_past(page, page.evaluate("() => document.querySelector('[data-audio]').currentTime"))
    page.unroute(queue_url)


# --- 2. Seek, pause, progress, reload, resume -------------------------------------------------------------------------


def test_seek_pause_store_and_resume_after_reload(open_page, world):
    # A book: a music track at 60 % has counted as played (the threshold is 50 %) and starts over.
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.book}/")
    play_this(page)
    wait_playing_past(page, 0.5)

    target_s = 14  # 60 % of 24 s
    page.locator("#player-seek").fill(str(target_s))
    wait_playing_past(page, target_s)
    player_button(page, "Pause").click()
    paused_at = page.evaluate("() => document.querySelector('[data-audio]').currentTime")

    stored = wait_progress(page, world, world.book, lambda p: p["state"] == "paused", "the pause is stored")
    assert abs(stored["position_ms"] - target_s * 1000) <= 1000
    assert abs(stored["position_ms"] - paused_at * 1000) <= 300
    assert stored["device_id"] == page.evaluate("() => window.revengePlayer.deviceId")

    page.reload()
    page.wait_for_function("(id) => window.revengePlayer && window.revengePlayer.trackId === id", arg=world.book)
    expect(page.locator("[data-elapsed]")).to_have_text(f"0:{int(stored['position_ms'] / 1000):02d}")
    player_button(page, "Play").click()
    wait_playing_past(page, 0.2)
    page.wait_for_function("() => window.revengePlayer.settled")
    assert abs(audio_time(page) - stored["position_ms"] / 1000) < 1.5  # resumed there, not from the start


def clock_s(text: str) -> int:
    """The first m:ss clock in a text, in seconds."""
    minutes, seconds = re.search(r"(\d+):(\d\d)", text).groups()
    return int(minutes) * 60 + int(seconds)


def wait_clock_at_least(page: Page, selector: str, seconds: int) -> None:
    page.wait_for_function(
        "([selector, s]) => { const node = document.querySelector(selector);"
        " const m = node && node.textContent.match(/(\\d+):(\\d\\d)/); return m && m[1] * 60 + Number(m[2]) >= s; }",
        arg=[selector, seconds],
    )


def test_pages_show_the_freshest_position_after_a_reload(open_page, world):
    # The server's last save lags the player: by up to 10 s while playing, and across a reload the page is
    # rendered before the old page's last save (sent on pagehide) leaves. The page shows the player's own.
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.long_tone}/")
    play_this(page)
    wait_playing_past(page, 0.5)
    page.locator("#player-seek").fill("60")  # stored at once; the next periodic save is 10 s later
    wait_playing_past(page, 63)
    note = page.locator(f'main .resume-note[data-progress-of="{world.long_tone}"] [data-progress-text]')
    expect(note).to_have_text(re.compile(r"^Playing at \d+:\d\d on this device$"))  # not "Stopped at 1:00"
    assert clock_s(note.text_content()) >= 62  # the server has 1:00

    at_reload = audio_time(page)
    page.reload()
    page.wait_for_function("(id) => window.revengePlayer && window.revengePlayer.trackId === id", arg=world.long_tone)
    expect(note).to_have_text(re.compile(r"^Stopped at \d+:\d\d on this device$"))
    shown = note.text_content()
    assert clock_s(shown) >= int(at_reload), (shown, at_reload)
    expect(page.locator("[data-elapsed]")).to_have_text(re.search(r"\d+:\d\d", shown).group())  # bar agrees
    screenshot(page, "track-after-reload")

    # Home, reloaded while playing: the continue card says where the player is, as the bar does.
    player_button(page, "Play").click()
    wait_playing_past(page, at_reload + 1)
    page.locator(".site-nav").get_by_role("link", name="Home").click()
    card_text = f'main .continue-card[data-progress-of="{world.long_tone}"] [data-progress-text]'
    wait_playing_past(page, at_reload + 4)
    at_reload = audio_time(page)
    page.reload()
    page.wait_for_function("(id) => window.revengePlayer && window.revengePlayer.trackId === id", arg=world.long_tone)
    wait_clock_at_least(page, card_text, int(at_reload))
    elapsed = page.locator("[data-elapsed]").text_content()
    expect(page.locator(card_text)).to_have_text(f"{elapsed} of 5:00")
    assert clock_s(elapsed) >= int(at_reload)

    # What every other device reads: the reload's last save, landed.
    stored = wait_progress(page, world, world.long_tone, lambda p: p["position_ms"] >= at_reload * 1000, "last save")
    assert stored["device_id"] == page.evaluate("() => window.revengePlayer.deviceId")


def test_a_last_save_that_never_reached_the_server_is_read_back_and_sent(open_page, world):
    # The keepalive request of a page going away can be lost (or land after the next page asked): the
    # player keeps its last save in the browser, and the next page resumes from it and stores it.
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.long_tone}/")
    device = page.evaluate("() => window.revengePlayer.deviceId")
    play_this(page)
    wait_playing_past(page, 0.5)
    page.locator("#player-seek").fill("60")
    wait_playing_past(page, 60)
    player_button(page, "Pause").click()
    stored = wait_progress(page, world, world.long_tone, lambda p: p["state"] == "paused", "the pause is stored")
    # What the lost request said: paused at 1:15, a second after the stored pause.
    lost_at = stored["client_updated_at"].replace("Z", "+00:00")
    page.evaluate(
        "([trackId, device, at]) => localStorage.setItem('revenge.last-save', JSON.stringify({trackId, device,"
        " position_ms: 75000, state: 'paused', client_updated_at: new Date(Date.parse(at) + 1000).toISOString()}))",
        [world.long_tone, device, lost_at],
    )

    page.reload()
    page.wait_for_function("(id) => window.revengePlayer && window.revengePlayer.trackId === id", arg=world.long_tone)
    expect(page.locator("[data-elapsed]")).to_have_text("1:15")
    note = page.locator(f'main .resume-note[data-progress-of="{world.long_tone}"] [data-progress-text]')
    expect(note).to_have_text("Stopped at 1:15 on this device")
    resent = wait_progress(page, world, world.long_tone, lambda p: p["position_ms"] == 75000, "the save is sent again")
    assert (resent["device_id"], resent["state"]) == (device, "paused")


# --- 3. Another device is ahead: 409, offered jump ------------------------------------------------------------------


def test_a_newer_position_from_another_device_is_offered_after_a_409(open_page, watch, world):
    # The 409 this test is about is logged by Chromium as a failed request: the one console error allowed.
    watch.expect_error(r"status of 409 \(Conflict\) \(http://[^ ]+/api/v1/sessions/\d+,")
    laptop = open_page()
    sign_in(laptop, world.base_url, "listener", next_path=f"/tracks/{world.hum}/")
    play_this(laptop)
    wait_playing_past(laptop, 1.0)
    player_button(laptop, "Pause").click()
    wait_progress(laptop, world, world.hum, lambda p: p["state"] == "paused", "the laptop's pause is stored")

    # Meanwhile, on the phone: the same user resumes there and listens on from 0:06.
    phone = open_page(viewport=PHONE)
    sign_in(phone, world.base_url, "listener", next_path=f"/tracks/{world.hum}/")
    phone_id = phone.evaluate("() => window.revengePlayer.deviceId")
    play_this(phone)
    wait_playing_past(phone, 1.0)
    phone.locator("#player-seek").fill("6")
    wait_playing_past(phone, 6)
    player_button(phone, "Pause").click()
    newer = wait_progress(
        phone, world, world.hum, lambda p: p["device_id"] == phone_id and p["state"] == "paused", "the phone's pause"
    )

    # Back on the laptop: resuming sends its own (older) position, the server answers 409 with the newer one.
    conflicts = []
    laptop.on("response", lambda r: conflicts.append(r.url) if r.status == 409 else None)
    player_button(laptop, "Play").click()
    offer = laptop.locator("[data-offer]")
    expect(offer).to_be_visible()
    assert conflicts, "the server did not answer 409"
    newer_clock = f"0:{newer['position_ms'] // 1000:02d}"
    expect(offer).to_contain_text(phone_id)
    expect(offer).to_contain_text(newer_clock)
    expect(laptop.locator("[data-elsewhere]")).to_contain_text(phone_id)  # "now playing on another device"

    laptop.get_by_role("button", name=f"Jump to {newer_clock}").click()
    laptop.wait_for_function(
        "(s) => { const a = document.querySelector('[data-audio]');"
        " return !a.seeking && Math.abs(a.currentTime - s) < 1.5; }",
        arg=newer["position_ms"] / 1000,
    )
    expect(offer).to_be_hidden()
    laptop_id = laptop.evaluate("() => window.revengePlayer.deviceId")
    taken = wait_progress(laptop, world, world.hum, lambda p: p["device_id"] == laptop_id, "the laptop takes over")
    assert taken["position_ms"] >= newer["position_ms"] - 500


# --- 4. Audiobook: chapters ----------------------------------------------------------------------------------------


def test_audiobook_chapters_next_chapter_and_sleep_at_its_end(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener")
    page.get_by_role("link", name="Libraries").click()
    page.get_by_role("link", name="Audiobooks").click()
    page.get_by_role("link", name="Sine Saga").click()
    page.get_by_role("link", name="The First Wave").click()
    chapters_on_page = page.locator("main .chapter-row")
    expect(chapters_on_page).to_have_count(3)
    expect(chapters_on_page.nth(1)).to_contain_text("Part 2")

    play_this(page)
    wait_playing_past(page, 0.5)
    assert page.evaluate("() => window.revengePlayer.mode") == "hls"  # three files, one timeline
    player_button(page, "Chapters").click()
    panel = page.locator("#panel-chapters")
    expect(panel).to_be_visible()
    expect(panel.locator(".panel-item")).to_have_count(3)

    second_s = world.chapter_starts_ms[1] / 1000
    player_button(page, "Next chapter").click()
    page.wait_for_function(
        "(s) => { const a = document.querySelector('[data-audio]');"
        " return !a.seeking && a.currentTime >= s - 0.5 && a.currentTime <= s + 0.5; }",
        arg=second_s,
    )
    expect(page.locator("[data-now-sub]")).to_contain_text("Chapter 2 of 3")
    expect(panel.locator('.panel-item[aria-current="true"]')).to_contain_text("Part 2")

    # A bookmark with a note, listed, and jumped back to later.
    player_button(page, "Bookmarks").click()
    bookmarks = page.locator("#panel-bookmarks")
    bookmarks.get_by_label("Note").fill("The wave rises")
    bookmarks.get_by_role("button", name=re.compile(r"^Add at \d+:\d\d$")).click()
    jump = bookmarks.get_by_role("button", name=re.compile(r"^Jump to bookmark \d+:\d\d: The wave rises$"))
    expect(jump).to_be_visible()
    (stored,) = api_json(page, world.base_url, f"/api/v1/tracks/{world.book}/bookmarks")["results"]
    assert stored["note"] == "The wave rises" and second_s <= stored["position_ms"] / 1000 < second_s + 3
    player_button(page, "Back 15 seconds").click()
    jump.click()
    page.wait_for_function(
        "(s) => { const a = document.querySelector('[data-audio]');"
        " return !a.seeking && a.currentTime >= s - 0.5 && a.currentTime <= s + 0.5; }",
        arg=stored["position_ms"] / 1000,
    )

    # Sleep timer at the end of the chapter: two seconds before it, then it pauses there by itself.
    third_s = world.chapter_starts_ms[2] / 1000
    page.locator("#player-seek").fill(str(int(third_s - 2)))
    page.get_by_label("Sleep timer").select_option("chapter")
    page.wait_for_function("() => document.querySelector('[data-audio]').paused", timeout=15_000)
    assert abs(audio_time(page) - third_s) < 0.6


# --- 5. Direct play with Range ----------------------------------------------------------------------------------------


def test_direct_play_of_an_mp3_seeks_with_range_requests(open_page, watch, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/tracks/{world.long_tone}/")
    play_this(page)
    wait_playing_past(page, 1.0)
    assert page.evaluate("() => window.revengePlayer.mode") == "direct"

    page.locator("#player-seek").fill("240")  # 80 %: far beyond what the browser has buffered
    wait_playing_past(page, 240)

    files = watch.urls(f"/api/v1/tracks/{world.long_tone}/file")
    assert files and all(entry.status == 206 for entry in files), files
    seeks = [entry for entry in files if entry.range and not entry.range.startswith("bytes=0-")]
    assert seeks, f"no Range request from an offset: {files}"
    assert not watch.urls("/hls/")

    # The keyboard: arrows skip back 15 s (and on 30 s), space pauses and plays.
    page.locator("main h1").click()
    before = audio_time(page)
    page.keyboard.press("ArrowLeft")
    assert abs(audio_time(page) - (before - 15)) < 1.0
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('[data-audio]').paused")
    expect(player_button(page, "Play")).to_be_visible()
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    wait_playing_past(page, before + 14)


# --- 6. No grant, no trace -----------------------------------------------------------------------------------------


def test_a_user_without_a_grant_sees_no_trace_of_the_library(open_page, watch, world):
    page = open_page()
    sign_in(page, world.base_url, "outsider")
    for path in ("/", "/libraries/", "/albums/", "/tracks/", "/tracks/?q=wave", "/albums/?q=saga", "/history/"):
        page.goto(world.base_url + path)
        text = page.locator("main").inner_text()
        for trace in ("Audiobooks", "The First Wave", "Sine Saga", "A. Writer"):
            assert trace not in text, (path, trace)
    for path in (f"/libraries/{world.books}/", f"/albums/{world.series}/", f"/tracks/{world.book}/"):
        watch.expect_error(rf"status of 404 \(Not Found\) \(http://[^ ]+{re.escape(path)},")  # the page tested
        response = page.goto(world.base_url + path)
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    for path in (
        f"/api/v1/tracks/{world.book}",
        f"/api/v1/tracks/{world.book}/stream",
        f"/api/v1/libraries/{world.books}",
    ):
        assert page.request.get(world.base_url + path).status == 404, path
    # The music library is theirs: it plays.
    page.goto(f"{world.base_url}/tracks/{world.hum}/")
    play_this(page)
    wait_playing_past(page, 0.5)


# --- 7. Screenshots ------------------------------------------------------------------------------------------------


def csrf(page: Page) -> str:
    return next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")


def test_screenshots_of_the_home_page_and_the_player(open_page, world):
    # Something to continue, and another device that has the book open.
    other = open_page()
    sign_in(other, world.base_url, "listener")
    for track_id, position_ms in ((world.noise, 9_000), (world.book, 9_000)):
        other.request.put(
            f"{world.base_url}/api/v1/progress/{track_id}",
            data={"position_ms": position_ms, "device_id": "Pixel 8"},
            headers={"X-CSRFToken": csrf(other)},
        )

    # The phone of the same user has the book open, paused: "now playing on another device".
    session = other.request.post(
        f"{world.base_url}/api/v1/sessions",
        data={"track": world.book, "device_id": "Pixel 8"},
        headers={"X-CSRFToken": csrf(other)},
    ).json()
    other.request.patch(
        f"{world.base_url}/api/v1/sessions/{session['id']}",
        data={"position_ms": 9_000, "state": "paused"},
        headers={"X-CSRFToken": csrf(other)},
    )

    shots = {}
    for label, viewport in (("", DESKTOP), ("-phone", PHONE)):
        page = open_page(viewport=viewport, device_scale_factor=2 if label else 1)
        sign_in(page, world.base_url, "listener")
        expect(page.locator(".continue-card")).to_have_count(2)
        shots[f"home{label}"] = screenshot(page, f"home{label}")

        page.goto(f"{world.base_url}/tracks/{world.book}/")
        play_this(page)
        wait_playing_past(page, 10.0)
        player_button(page, "Pause").click()
        if label:
            player_button(page, "More player controls").click()
        else:
            player_button(page, "Chapters").click()
        page.get_by_label("Playback speed").select_option("1.25")
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        shots[f"player{label}"] = screenshot(page, f"player{label}")
        # Nothing sticks out sideways at phone width.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    for path in shots.values():
        assert path.stat().st_size > 10_000, path
