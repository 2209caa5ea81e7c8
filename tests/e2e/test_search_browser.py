"""The header's search box in a real Chromium against a live server: typing a misspelt, unaccented name shows
the right artist, album and tracks as you type (debounced: one request for the whole word), a suggestion opens
its page, and Enter opens the results page; nothing of a library the listener has no grant for appears; the
page stays clean (no script error, no Content-Security-Policy violation)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from apps.library.models import Album, Library, LibraryAccess
from tests.e2e.browser import PASSWORD, live_site, needs_chromium, sign_in
from tests.factories import LibraryFactory, TrackFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db, needs_chromium]


@dataclass
class World:
    base_url: str
    album_id: int


def album(library: Library, title: str, artist: str, tracks: list[str]) -> Album:
    row = Album.objects.create(
        library=library, title=title, album_artist=artist, album_artists=[artist], artists=[artist], track_count=2
    )
    for number, track in enumerate(tracks, start=1):
        TrackFactory(library=library, album=row, title=track, artists=[artist], track_number=number)
    return row


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    def build() -> int:
        music = LibraryFactory(name="Searchable")
        hidden = LibraryFactory(name="Not yours")
        ace = album(music, "Ace of Spades", "Motörhead", ["Ace of Spades", "Love Me Like a Reptile"])
        album(music, "Abbey Road", "The Beatles", ["Come Together", "Something"])
        album(hidden, "Motorhead Bootleg", "Motörhead", ["Secret Reptile"])
        listener = get_user_model().objects.create_user("searcher", password=PASSWORD)
        LibraryAccess.objects.create(user=listener, library=music)
        return ace.pk

    with live_site(django_db_blocker, tmp_path_factory.mktemp("search"), build, usernames=["searcher"]) as site:
        base_url, album_id = site
        yield World(base_url=base_url, album_id=album_id)


def test_a_misspelt_query_typed_in_the_header_finds_the_artist_album_and_tracks(world, open_page, watch):
    page = open_page()
    sign_in(page, world.base_url, "searcher", "/")
    box = page.get_by_role("combobox", name="Search artists, albums, tracks, books and shows")
    box.press_sequentially("motorhed", delay=40)  # typed, unaccented, a letter missing

    suggestions = page.locator("#site-search-suggestions")
    expect(suggestions).to_be_visible()
    expect(suggestions.locator("[data-suggestion=artists]")).to_have_text(["Motörhead 1 album"])
    expect(suggestions.locator("[data-suggestion=tracks]")).to_contain_text(["Ace of Spades", "Love Me Like a Reptile"])
    expect(suggestions).not_to_contain_text("Bootleg")
    expect(suggestions).not_to_contain_text("Secret")
    # Debounced: typed at 40 ms a key, under the 200 ms pause, the word costs one request (a slow machine may
    # see a pause or two), not one per keystroke from the second character on (7).
    searches = [event.url.split("?")[1] for event in watch.urls("/api/v1/search")]
    assert searches[-1] == "q=motorhed&limit=5" and len(searches) < 7, searches

    box.press("Enter")  # no suggestion chosen: the results page
    page.wait_for_url(f"{world.base_url}/search/?q=motorhed")
    results = page.locator("[data-search-results]")
    expect(results.locator("[data-search-hit=artist]")).to_have_text(["Motörhead"])
    expect(results.locator(".track-title")).to_have_text(["Ace of Spades", "Love Me Like a Reptile"])

    box.fill("")
    box.press_sequentially("abey rode", delay=40)
    expect(suggestions.locator("[data-suggestion=albums]")).to_contain_text(["Abbey Road"])
    suggestions.locator("[data-suggestion=albums]").first.click()
    page.wait_for_url(f"{world.base_url}/albums/*/")
    expect(page.locator("h1")).to_contain_text("Abbey Road")
    expect(suggestions).to_be_hidden()
