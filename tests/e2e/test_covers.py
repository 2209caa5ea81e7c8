"""Covers in the web player, in a real Chromium: a generated library with a cover in each of the four ways a
library carries one (ID3 APIC, MP4 covr, a FLAC picture block, a folder image) is scanned, its variants made by
the artwork task, and the album grid shows each cover: a pixel of every rendered cover has its source's colour.
The page stays clean under the Content-Security-Policy (no inline style: the placeholder is a data: image), and
the player hands the cover to the Media Session (lock screens, media keys)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from apps.library.models import Album, Artwork, Library, LibraryAccess, Track
from apps.library.services import library_scan
from apps.library.tasks import artwork_variants_task
from tests.artwork import embed, image_bytes
from tests.audio import make_audio
from tests.e2e.browser import PASSWORD, live_site, needs_chromium, sign_in
from tests.factories import LibraryFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db, needs_chromium]

# Album title → (how its cover is carried, the cover's colour).
COVERS = {
    "Apic": ("mp3", (210, 40, 40)),
    "Covr": ("m4a", (40, 190, 60)),
    "Flac": ("flac", (40, 70, 210)),
    "Folder": ("folder", (230, 200, 30)),
}


@dataclass
class World:
    base_url: str
    artwork_root: Path
    track_ids: dict[str, int]


def _build(root: Path) -> dict[str, int]:
    for album, (how, color) in COVERS.items():
        suffix = "mp3" if how == "folder" else how
        path = make_audio(root / album / f"01.{suffix}", seconds=2.0, frequency=330,
                          tags={"title": f"{album} song", "album": album, "track": "1"})  # fmt: skip
        if how == "folder":
            (root / album / "folder.jpg").write_bytes(image_bytes(color, size=(500, 500)))
        else:
            embed(path, image_bytes(color, fmt="PNG") if how == "flac" else image_bytes(color),
                  mime="image/png" if how == "flac" else "image/jpeg")  # fmt: skip
    library = LibraryFactory(name="Covers", root=root)
    library_scan(library=library)
    assert artwork_variants_task(list(Artwork.objects.values_list("id", flat=True))) == {"ready": 4}
    return {track.album.title: track.pk for track in Track.objects.select_related("album")}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("covers")

    def build() -> dict[str, int]:
        track_ids = _build(root / "media")
        listener = get_user_model().objects.create_user("viewer", password=PASSWORD)
        for library in Library.objects.all():
            LibraryAccess.objects.create(user=listener, library=library)
        return track_ids

    site = live_site(
        django_db_blocker,
        root,
        build,
        usernames=["viewer"],
        also_delete=[Artwork],
        ARTWORK_ROOT=root / "artwork",
        RENDITIONS_ROOT=root / "renditions",
    )
    with site as (base_url, track_ids):
        yield World(base_url=base_url, artwork_root=root / "artwork", track_ids=track_ids)


@pytest.fixture(autouse=True)
def _module_artwork(world, _artwork_queue, settings) -> None:
    settings.ARTWORK_ROOT = world.artwork_root  # tests/conftest.py gives each test a folder of its own


def test_the_album_grid_shows_every_cover_in_its_colour(world, open_page):
    page = open_page()
    sign_in(page, world.base_url, "viewer", next_path="/albums/")
    cards = page.locator(".album-card")
    assert cards.count() == len(COVERS)
    for index in range(cards.count()):
        card = cards.nth(index)
        title = card.locator(".album-title").inner_text()
        image = card.locator("img.cover-image")
        image.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        # Lazy, from the stored WebP sizes; the placeholder under it has the dominant colour.
        assert image.get_attribute("loading") == "lazy"
        assert [part.split()[-1] for part in image.get_attribute("srcset").split(", ")] == [
            "64w",
            "128w",
            "300w",
            "600w",
        ]
        chosen = page.evaluate("(img) => img.currentSrc", image.element_handle())
        assert "/art/" in chosen and chosen.endswith(".webp")
        shot = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
        pixel = shot.getpixel((shot.width // 2, shot.height // 2))
        expected = COVERS[title][1]
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, expected, strict=True)), (title, pixel, expected)
        color = Album.objects.get(title=title).artwork.color
        assert card.locator(".cover").get_attribute("data-cover-color") == color
        assert color in (card.locator("img.cover-placeholder").get_attribute("src") or "").replace("%23", "#")


def test_the_player_bar_and_the_media_session_get_the_cover(world, open_page):
    page = open_page()
    sign_in(page, world.base_url, "viewer", next_path=f"/tracks/{world.track_ids['Covr']}/")
    page.locator("main .album-head [data-play]").click()  # an .m4a: direct play
    page.wait_for_function("() => navigator.mediaSession.metadata && navigator.mediaSession.metadata.artwork.length")
    artwork = page.evaluate("() => navigator.mediaSession.metadata.artwork.map((a) => [a.src, a.sizes, a.type])")
    content_hash = Album.objects.get(title="Covr").artwork.hash
    assert [(src.split("/")[-2:], sizes, kind) for src, sizes, kind in artwork] == [
        ([content_hash, f"{size}.webp"], f"{size}x{size}", "image/webp") for size in (128, 300, 600)
    ]
    bar = page.locator("[data-now-tile] img.cover-image")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=bar.element_handle())
    shot = Image.open(io.BytesIO(bar.screenshot())).convert("RGB")
    pixel = shot.getpixel((shot.width // 2, shot.height // 2))
    assert all(abs(a - b) <= 12 for a, b in zip(pixel, COVERS["Covr"][1], strict=True)), pixel
