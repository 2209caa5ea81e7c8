"""Issue 14 items 6, 7 and 9, what the pages show: an album's discs (a header each, numbers restarting), a
compilation under "Various Artists" and on each track artist's page ("Appears on"), a podcast show with its
author and its episodes newest first by publish date, with a short description. The browser side, with
screenshots, is in tests/e2e/test_pages.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from apps.library.models import Album, Library, LibraryKind, Track
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.web.test_pages import make_album, make_track, signed_in, text_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def music(tmp_path, listener) -> Library:
    library = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=tmp_path / "m")
    LibraryAccessFactory(user=listener, library=library)
    return library


@pytest.fixture
def podcasts(tmp_path, listener) -> Library:
    library = LibraryFactory(name="Pods", kind=LibraryKind.PODCAST, root=tmp_path / "p")
    LibraryAccessFactory(user=listener, library=library)
    return library


def on_disc(track: Track, disc: int | None, subtitle: str = "") -> Track:
    Track.objects.filter(pk=track.pk).update(disc_number=disc, disc_subtitle=subtitle)
    return track


def disc_headers(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", header) for header in re.findall(r'<h2 class="disc-title"[^>]*>(.*?)</h2>', html)]


def numbered_rows(html: str) -> list[tuple[str, str]]:
    """(number, title) of each row of the track tables, in page order."""
    return re.findall(r'<td class="col-num">([^<]*)</td>\s*<td>\s*<a class="track-title" href="[^"]+">([^<]+)<', html)


def album_names(section: str) -> list[str]:
    return re.findall(r'class="album-title">([^<]+)<', section)


def section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


# --- 6. Discs ---------------------------------------------------------------------------------------------


def test_an_album_of_several_discs_has_a_header_per_disc_and_numbers_restarting(music, listener):
    album = make_album(music, "Double Tone", "The Tones")
    # Made out of order: the page follows disc then track number.
    on_disc(make_track(music, "Second One", album=album, number=1), 2, "Encores")
    on_disc(make_track(music, "First Two", album=album, number=2), 1)
    on_disc(make_track(music, "First One", album=album, number=1), 1)
    on_disc(make_track(music, "Second Two", album=album, number=2), 2, "Encores")

    html = text_of(signed_in(listener).get(f"/albums/{album.pk}/"))

    assert disc_headers(html) == ["Disc 1", "Disc 2 · Encores"]
    assert numbered_rows(html) == [("1", "First One"), ("2", "First Two"), ("1", "Second One"), ("2", "Second Two")]
    assert numbered_rows(html.split('id="disc-2"')[1]) == [("1", "Second One"), ("2", "Second Two")]
    # Every disc's play buttons queue the whole album, from the track clicked on.
    ids = ",".join(str(pk) for pk in Track.objects.filter(album=album).order_by("disc_number", "track_number")
                   .values_list("pk", flat=True))  # fmt: skip
    assert html.count(f'<table class="tracks" data-queue="{ids}">') == 2


def test_a_one_disc_album_has_no_disc_header(music, listener):
    album = make_album(music, "Single Disc", "The Tones")
    on_disc(make_track(music, "Only", album=album, number=1), 1)
    on_disc(make_track(music, "Also", album=album, number=2), 1)

    html = text_of(signed_in(listener).get(f"/albums/{album.pk}/"))

    assert disc_headers(html) == []
    assert numbered_rows(html) == [("1", "Only"), ("2", "Also")]


def test_a_single_disc_with_a_subtitle_shows_it(music, listener):
    album = make_album(music, "Live", "The Tones")
    on_disc(make_track(music, "Opener", album=album, number=1), 1, "At the Hall")

    html = text_of(signed_in(listener).get(f"/albums/{album.pk}/"))

    assert disc_headers(html) == ["Disc 1 · At the Hall"]


# --- 7. Compilations, artist pages ------------------------------------------------------------------------


@pytest.fixture
def compilation(music) -> Album:
    """What the scanner makes of a compilation with no album artist tagged, and an album of one artist."""
    various = Album.objects.create(library=music, title="Tone Hits", album_artist="Various Artists",
                                   album_artists=["Various Artists"], artists=["Ann Sine", "Bo Square"],
                                   compilation=True, release_type="album; compilation")  # fmt: skip
    make_track(music, "Sine Hit", album=various, number=1, artists=("Ann Sine",))
    make_track(music, "Square Hit", album=various, number=2, artists=("Bo Square",))
    own = Album.objects.create(library=music, title="Pure Sine", album_artist="Ann Sine", album_artists=["Ann Sine"],
                               artists=["Ann Sine"], year=2020)  # fmt: skip
    make_track(music, "Pure", album=own, number=1, artists=("Ann Sine",))
    return various


def test_a_compilation_shows_various_artists_and_links_each_track_artist(compilation, listener):
    html = text_of(signed_in(listener).get(f"/albums/{compilation.pk}/"))

    meta = html.split("data-album-artists>")[1].split("</p>")[0]
    assert '<a href="/artists/Various%20Artists/">Various Artists</a>' in meta
    assert '<span class="badge">Compilation</span>' in meta
    assert '<a href="/artists/Ann%20Sine/">Ann Sine</a>' in html.split("data-guests>")[1].split("</p>")[0]
    assert '<span class="track-sub"><a href="/artists/Bo%20Square/">Bo Square</a></span>' in html


def test_an_artist_page_lists_their_albums_and_the_albums_they_appear_on(compilation, listener):
    client = signed_in(listener)

    html = text_of(client.get("/artists/Ann%20Sine/"))

    assert re.search(r"<h1[^>]*>Ann Sine</h1>", html)
    assert album_names(section(html, "albums-title")) == ["Pure Sine"]
    assert album_names(section(html, "appears-on-title")) == ["Tone Hits"]
    assert '<a href="/tracks/?artist=Ann%20Sine">All tracks by Ann Sine</a>' in html
    # Only on the compilation: no "Albums" section at all.
    html = text_of(client.get("/artists/Bo%20Square/"))
    assert 'id="albums-title"' not in html
    assert album_names(section(html, "appears-on-title")) == ["Tone Hits"]
    # The compilation is Various Artists' own album.
    html = text_of(client.get("/artists/Various%20Artists/"))
    assert album_names(section(html, "albums-title")) == ["Tone Hits"]
    assert 'id="appears-on-title"' not in html


def test_an_artist_with_tracks_but_no_album_has_a_page_an_unknown_or_hidden_one_is_404(
    tmp_path, music, listener, compilation
):
    make_track(music, "Loose Single", artists=("No Album Band",))
    hidden = LibraryFactory(name="Vault", kind=LibraryKind.MUSIC, root=tmp_path / "h")
    secret = make_album(hidden, "Secret Record", "Secret Band")
    make_track(hidden, "Secret Song", album=secret, artists=("Secret Band",))
    client = signed_in(listener)

    response = client.get("/artists/No%20Album%20Band/")
    assert response.status_code == 200
    assert "All tracks by No Album Band" in text_of(response)
    assert client.get("/artists/Nobody/").status_code == 404
    response = client.get("/artists/Secret%20Band/")
    assert response.status_code == 404
    assert "Secret" not in text_of(response)


def test_an_artist_name_with_a_slash_or_a_question_mark_round_trips(music, listener):
    album = Album.objects.create(library=music, title="Thunder", album_artist="AC/DC?", album_artists=["AC/DC?"],
                                 artists=["AC/DC?"])  # fmt: skip
    make_track(music, "Bolt", album=album, number=1, artists=("AC/DC?",))
    client = signed_in(listener)

    html = text_of(client.get(f"/albums/{album.pk}/"))
    assert '<a href="/artists/AC/DC%3F/">AC/DC?</a>' in html
    assert album_names(section(text_of(client.get("/artists/AC/DC%3F/")), "albums-title")) == ["Thunder"]


# --- 9. Podcast shows ----------------------------------------------------------------------------------------


def published(track: Track, days_ago: int, description: str = "") -> Track:
    when = datetime(2026, 6, 30, 12, tzinfo=UTC) - timedelta(days=days_ago)
    Track.objects.filter(pk=track.pk).update(published_at=when, description=description)
    return track


def test_a_show_page_has_its_author_and_episodes_newest_first_with_date_and_description(podcasts, listener):
    show = Album.objects.create(library=podcasts, title="Tone Talk", author="Ada Host")
    # Added in another order than published: the publish date decides.
    published(make_track(podcasts, "Episode 2", album=show), 10, "<p>The <b>second</b> talk &amp; more.</p>")
    published(make_track(podcasts, "Episode 3", album=show), 1, "Word " * 100)
    published(make_track(podcasts, "Episode 1", album=show), 20)

    html = text_of(signed_in(listener).get(f"/albums/{show.pk}/"))

    assert "by Ada Host" in html.split("data-album-artists>")[1].split("</p>")[0]
    episodes = section(html, "episodes-title")
    assert re.findall(r'class="track-title item-title" href="[^"]+">([^<]+)<', episodes) == [
        "Episode 3",
        "Episode 2",
        "Episode 1",
    ]
    assert '<span class="item-sub">20 Jun 2026</span>' in episodes  # the show's title is not repeated
    # The description without its markup (escaped, never rendered), cut short.
    assert '<span class="item-desc" data-description>The second talk &amp;amp; more.</span>' in episodes
    long_one = re.search(r"<span class=\"item-desc\" data-description>(Word [^<]*)</span>", episodes).group(1)
    assert len(long_one) == 200 and long_one.endswith("…")
    assert episodes.count("data-description") == 2  # Episode 1 has none


def test_a_podcast_library_orders_episodes_by_publish_date_not_by_when_added(podcasts, listener):
    show = Album.objects.create(library=podcasts, title="Tone Talk", author="Ada Host")
    published(make_track(podcasts, "New Episode", album=show), 2)
    published(make_track(podcasts, "Old Episode, added later", album=show), 30)

    html = text_of(signed_in(listener).get(f"/libraries/{podcasts.pk}/"))

    episodes = html.split('id="episodes-title"')[1]
    assert re.findall(r'class="track-title item-title" href="[^"]+">([^<]+)<', episodes) == [
        "New Episode",
        "Old Episode, added later",
    ]
    assert "Tone Talk · 28 Jun 2026" in episodes
    assert re.findall(r'class="album-sub">([^<]+)<', html.split('id="shows-title"')[1]) == ["Ada Host"]
