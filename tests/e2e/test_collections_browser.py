"""Favourites and playlists in the web player, in a real Chromium against a live server: a listener stars a
track from a track row, builds a playlist (create, add three tracks from their rows), reorders it by drag
and drop, and plays it; the page stays clean (no script error, no Content-Security-Policy violation)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from apps.collections.models import Playlist, TrackMark
from apps.library.models import LibraryAccess, Track
from apps.library.services import library_scan
from tests.audio import make_audio
from tests.e2e.browser import PASSWORD, live_site, needs_chromium, sign_in, wait_playing_past
from tests.factories import LibraryFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db, needs_chromium]

TITLES = ["Alpha", "Beta", "Gamma"]


@dataclass
class World:
    base_url: str
    track_ids: dict[str, int]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("collections")

    def build() -> dict[str, int]:
        for number, title in enumerate(TITLES, start=1):
            tags = {"title": title, "artist": "Tones", "album": "Three", "track": str(number)}
            make_audio(root / "media" / f"{number:02d} {title}.mp3", seconds=6, frequency=300 + 100 * number, tags=tags)
        library = LibraryFactory(name="Tones", root=root / "media")
        library_scan(library=library)
        listener = get_user_model().objects.create_user("collector", password=PASSWORD)
        LibraryAccess.objects.create(user=listener, library=library)
        return {track.title: track.pk for track in Track.objects.filter(library=library)}

    site = live_site(
        django_db_blocker,
        root,
        build,
        usernames=["collector"],
        also_delete=[Playlist],
        RENDITIONS_ROOT=root / "renditions",
    )
    with site as (base_url, track_ids):
        yield World(base_url=base_url, track_ids=track_ids)


def test_star_build_a_playlist_reorder_it_by_drag_and_play_it(world, open_page, django_db_blocker):
    page = open_page()
    ids = world.track_ids
    sign_in(page, world.base_url, "collector", "/tracks/")

    star = page.locator(f'[data-favourite="{ids["Beta"]}"][data-kind="tracks"]')
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Rate Beta").select_option("4")
    page.get_by_role("link", name="Favourites").click()
    expect(page.locator("main .track-title")).to_have_text(["Beta"])

    page.get_by_role("link", name="Playlists").click()
    page.get_by_label("Name").fill("Road trip")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Road trip")).to_be_visible()
    playlist_url = page.url

    page.get_by_role("link", name="Tracks", exact=True).click()
    for title in TITLES:
        page.get_by_role("button", name=f"Add {title} to a playlist").click()
        dialog = page.locator("dialog.playlist-picker")
        dialog.get_by_role("button", name="Road trip").click()
        expect(dialog.locator("[data-picker-status]")).to_have_text("Added 1 to “Road trip”.")
        dialog.get_by_role("button", name="Close").click()

    page.goto(playlist_url)
    rows = page.locator("main table.tracks .track-title")
    expect(rows).to_have_text(TITLES)
    page.drag_and_drop('tr[data-entry-position="2"]', 'tr[data-entry-position="0"]')
    expect(rows).to_have_text(["Gamma", "Alpha", "Beta"])
    page.get_by_role("button", name="Move Alpha down").click()
    expect(rows).to_have_text(["Gamma", "Beta", "Alpha"])

    page.get_by_role("button", name="Play all").click()
    wait_playing_past(page, 0.5)
    assert page.evaluate("() => window.revengePlayer.trackId") == ids["Gamma"]
    assert page.evaluate("() => window.revengePlayer.queue") == [ids["Gamma"], ids["Beta"], ids["Alpha"]]

    with django_db_blocker.unblock():
        playlist = Playlist.objects.get(name="Road trip")
        order = list(playlist.entries.order_by("position").values_list("track__title", flat=True))
        assert (order, playlist.version, playlist.track_count) == (["Gamma", "Beta", "Alpha"], 6, 3)
        mark = TrackMark.objects.get(track_id=ids["Beta"])
        assert (mark.favourite_at is not None, mark.rating) == (True, 4)
