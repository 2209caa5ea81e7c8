"""What the pages show, in a real Chromium against a live server, over a library scanned from generated
files (issue 14): an album of two discs, a compilation under "Various Artists" and on its artists' pages, a
podcast show with its episodes newest first; and the admin's pages and the API docs with a clean console
(no CSP violation, no missing favicon). Each page is kept as a screenshot in the test output folder.

The fixtures `browser`, `watch` and `open_page` are in tests/e2e/conftest.py: every console error, CSP
violation or uncaught script error on any page fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from apps.accounts.models import SignInAttempt
from apps.library.models import Album, Library, LibraryAccess, LibraryKind, ScanJob
from tests.audio import make_audio
from tests.e2e.browser import PASSWORD, live_site, needs_chromium, screenshot, sign_in
from tests.factories import LibraryFactory
from tests.pipeline import scan_job

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    needs_chromium,
]


@dataclass
class World:
    base_url: str
    music: int
    double: int  # two discs, the second subtitled
    compilation: int  # no album artist tagged: Various Artists
    show: int
    scan_job: int


def _build_library(root: Path) -> dict[str, int]:
    music_dir, pods_dir = root / "music", root / "pods"
    for disc, subtitle in ((1, ""), (2, "Encores")):
        for number in (1, 2):
            tags = {"title": f"Disc {disc} Tone {number}", "artist": "The Tones", "album_artist": "The Tones",
                    "album": "Double Tone", "track": str(number), "disc": str(disc), "date": "2024"}  # fmt: skip
            if subtitle:
                tags["discsubtitle"] = subtitle
            make_audio(music_dir / "Double Tone" / f"{disc}-{number:02d}.flac", seconds=1, frequency=300 + number,
                       tags=tags)  # fmt: skip
    for number, artist in ((1, "Ann Sine"), (2, "Bo Square")):
        make_audio(music_dir / "Tone Hits" / f"{number:02d}.flac", seconds=1, frequency=500 + number,
                   tags={"title": f"{artist} Hit", "artist": artist, "album": "Tone Hits", "track": str(number),
                         "compilation": "1"})  # fmt: skip
    make_audio(music_dir / "Pure Sine" / "01.flac", seconds=1, frequency=700,
               tags={"title": "Pure", "artist": "Ann Sine", "album_artist": "Ann Sine", "album": "Pure Sine",
                     "track": "1", "date": "2020"})  # fmt: skip
    # Written newest first, so the files' order and mtimes are the opposite of the publish dates'.
    episodes = (("Episode 3", "2026-06-29", "The third talk: tones at dusk."), ("Episode 2", "2026-06-20", ""),
                ("Episode 1", "2026-06-10", "Where it all began."))  # fmt: skip
    for title, date, comment in episodes:
        tags = {"title": title, "album": "Tone Talk", "artist": "Ada Host", "date": date}
        if comment:
            tags["comment"] = comment
        make_audio(pods_dir / "Tone Talk" / f"{title}.mp3", seconds=1, frequency=400, tags=tags)
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=music_dir)
    pods = LibraryFactory(name="Podcasts", kind=LibraryKind.PODCAST, root=pods_dir)
    scan_job(music)
    scan_job(pods)
    return {
        "music": music.pk,
        "double": Album.objects.get(title="Double Tone").pk,
        "compilation": Album.objects.get(title="Tone Hits").pk,
        "show": Album.objects.get(title="Tone Talk").pk,
        "scan_job": ScanJob.objects.filter(library=music).latest("pk").pk,
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("pages")

    def build() -> dict:
        built = _build_library(root / "media")
        users = get_user_model().objects
        listener = users.create_user("listener", password=PASSWORD)
        users.create_superuser("boss", password=PASSWORD)
        for library in Library.objects.all():
            LibraryAccess.objects.create(user=listener, library=library)
        return built

    site = live_site(django_db_blocker, root, build, usernames=["listener", "boss"], also_delete=[SignInAttempt])
    with site as (base_url, built):
        yield World(base_url=base_url, **built)


def texts(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


# --- Item 6: discs ----------------------------------------------------------------------------------------------


def test_an_album_of_two_discs_shows_a_header_per_disc_and_numbers_restarting(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/albums/{world.double}/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Double Tone")
    expect(page.get_by_role("heading", level=2)).to_have_text(["Disc 1", "Disc 2 · Encores"])
    disc_2 = page.locator("section.disc").nth(1)
    assert texts(disc_2, ".col-num") == ["#", "1", "2"]
    assert texts(disc_2, ".track-title") == ["Disc 2 Tone 1", "Disc 2 Tone 2"]
    assert texts(page, "td.col-num") == ["1", "2", "1", "2"]
    screenshot(page, "album-two-discs")

    # Each disc's play buttons queue the whole album (from the track clicked on), not their disc alone.
    queues = page.locator("section.disc table.tracks").evaluate_all("(tables) => tables.map((t) => t.dataset.queue)")
    assert len(set(queues)) == 1 and len(queues[0].split(",")) == 4


# --- Item 7: compilations, artist pages -----------------------------------------------------------------------


def test_a_compilation_is_under_various_artists_and_on_each_artists_page(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path=f"/albums/{world.compilation}/")

    meta = page.locator("[data-album-artists]")
    expect(meta.get_by_role("link", name="Various Artists")).to_be_visible()
    expect(meta).to_contain_text("Compilation")
    screenshot(page, "compilation")

    page.locator("table.tracks").get_by_role("link", name="Ann Sine", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ann Sine")
    expect(page.get_by_role("heading", level=2)).to_have_text(["Albums", "Appears on"])
    albums = page.locator("section", has=page.get_by_role("heading", name="Albums", exact=True))
    appears_on = page.locator("section", has=page.get_by_role("heading", name="Appears on"))
    assert texts(albums, ".album-title") == ["Pure Sine"]
    assert texts(appears_on, ".album-title") == ["Tone Hits"]
    screenshot(page, "artist-appears-on")

    page.goto(f"{world.base_url}/albums/{world.compilation}/")
    page.locator("[data-album-artists]").get_by_role("link", name="Various Artists").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Various Artists")
    assert texts(page, ".album-title") == ["Tone Hits"]


# --- Item 9: a podcast show ---------------------------------------------------------------------------------------


def test_a_show_has_its_author_and_episodes_newest_first_with_date_and_description(open_page, world):
    page = open_page()
    sign_in(page, world.base_url, "listener", next_path="/libraries/")
    page.locator("main").get_by_role("link", name="Podcasts").click()
    expect(page.locator(".album-card .album-sub")).to_have_text("Ada Host · 2026")
    page.get_by_role("link", name="Tone Talk").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Tone Talk")
    expect(page.locator("[data-album-artists]")).to_contain_text("by Ada Host")
    expect(page.locator(".item-title")).to_have_text(["Episode 3", "Episode 2", "Episode 1"])
    expect(page.locator(".item-sub")).to_have_text(["29 Jun 2026", "20 Jun 2026", "10 Jun 2026"])
    expect(page.locator(".item-row").first.locator("[data-description]")).to_have_text("The third talk: tones at dusk.")
    expect(page.locator(".item-row").nth(1).locator("[data-description]")).to_have_count(0)
    screenshot(page, "podcast-show")


# --- Item 10: the admin and the API docs --------------------------------------------------------------------------


def test_the_admin_pages_and_the_api_docs_load_with_a_clean_console(open_page, watch, world):
    page = open_page()
    page.goto(f"{world.base_url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{world.base_url}/admin/")
    pages = {
        "admin-index": "/admin/",
        "admin-libraries": "/admin/library/library/",
        "admin-library-add": "/admin/library/library/add/",
        "admin-library-change": f"/admin/library/library/{world.music}/change/",
        "admin-tracks": "/admin/library/track/",
        "admin-scan-job": f"/admin/library/scanjob/{world.scan_job}/change/",
    }
    for name, path in pages.items():
        response = page.goto(f"{world.base_url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        expect(page.locator("link[rel=icon]")).to_have_count(1)
        icon_url = page.evaluate("() => document.querySelector('link[rel=icon]').href")
        assert page.request.get(icon_url).status == 200, icon_url
        screenshot(page, name)
    expect(page.locator("#content h2").first).to_contain_text("of Music")  # the scan job names its library

    page.goto(f"{world.base_url}/api/v1/docs")
    # Swagger UI renders ~90 operations in the browser: seconds on a loaded 2-CPU machine.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Revenge API", timeout=30_000)
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-docs")

    # Whatever asks for /favicon.ico (a JSON response, a browser's own guess) finds the icon.
    assert page.request.get(f"{world.base_url}/favicon.ico").status == 200
    assert not [entry for entry in watch.network if entry.status >= 400], watch.network
