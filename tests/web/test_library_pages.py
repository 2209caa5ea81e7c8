"""Issue 14: what a book or a podcast library's page and Home's "Recently added" list (books with author,
narrator, duration and progress, grouped by series; shows, then episodes newest first), scoped by grants,
with the progress buffer read and no N+1. The browser side is in tests/e2e/test_web_player.py."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.library.models import Album, Library, LibraryKind, Track
from apps.playback.progress import buffer
from apps.playback.services import progress_record
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.web.test_pages import make_album, make_track, signed_in, text_of

pytestmark = pytest.mark.django_db


def aged(track: Track, days: int) -> Track:
    """Added `days` ago (created_at is set by the database on insert)."""
    Track.objects.filter(pk=track.pk).update(created_at=timezone.now() - timedelta(days=days))
    return track


def book(library: Library, title: str, author: str, *, series: Album | None = None, tags: dict | None = None,
         duration_ms: int = 3_600_000, year: int | None = None) -> Track:  # fmt: skip
    track = make_track(library, title, album=series, artists=(author,), duration_ms=duration_ms)
    Track.objects.filter(pk=track.pk).update(tags=tags or {}, year=year)
    return track


def rows_of(html: str) -> list[str]:
    """The titles of the book/episode rows, in page order."""
    return re.findall(r'class="track-title item-title" href="[^"]+">([^<]+)<', html)


def row_html(html: str, track: Track) -> str:
    return html.split(f'data-track-row="{track.pk}"')[1].split("</li>")[0]


@pytest.fixture
def books(tmp_path, listener) -> Library:
    library = LibraryFactory(name="Books", kind=LibraryKind.AUDIOBOOK, root=tmp_path / "b")
    LibraryAccessFactory(user=listener, library=library)
    return library


def test_a_book_library_without_series_lists_its_books(books, listener):
    # What the issue saw: two books, no series tag, and "Nothing here yet".
    book(books, "Walden", "H. D. Thoreau", tags={"narrator": ["Ann Reader"]}, duration_ms=5_025_000)
    book(books, "Emma", "Jane Austen", tags={"composer": ["Bea Voice"]})

    html = text_of(signed_in(listener).get(f"/libraries/{books.pk}/"))

    assert "Nothing here yet" not in html
    assert rows_of(html) == ["Emma", "Walden"]
    walden = Track.objects.get(title="Walden")
    row = row_html(html, walden)
    assert "by H. D. Thoreau · read by Ann Reader" in row
    assert "<span data-progress-text>1:23:45</span>" in row  # not started: its length
    assert f'data-play="{walden.pk}"' in row and 'class="tile ' in row  # a play button, a cover placeholder
    assert "by Jane Austen · read by Bea Voice" in html  # the composer field, where taggers put narrators


def test_books_are_grouped_by_series_with_each_ones_progress(books, listener, settings):
    settings.PROGRESS_WRITE_MODE = "buffered"
    saga = make_album(books, "Sine Saga", "A. Writer")
    second = book(books, "The Second Wave", "A. Writer", series=saga, year=2021)
    first = book(books, "The First Wave", "A. Writer", series=saga, year=2020)
    book(books, "Alone", "B. Solo")
    book(books, "Zephyr", "C. Last")
    progress_record(user=listener, track_id=first.pk, position_ms=600_000, device_id="phone")
    progress_record(user=listener, track_id=second.pk, position_ms=3_600_000, device_id="phone")
    assert buffer.buffer_dirty_count() == 2  # not flushed: the page reads the buffer

    html = text_of(signed_in(listener).get(f"/libraries/{books.pk}/"))

    # Shelves by title: "Alone", the "Sine Saga" series (its books by year), then "Zephyr".
    assert rows_of(html) == ["Alone", "The First Wave", "The Second Wave", "Zephyr"]
    series_part = html.split(f'id="series-{saga.pk}"')[1].split("</section>")[0]
    assert rows_of(series_part) == ["The First Wave", "The Second Wave"]
    assert "<span data-progress-text>10:00 of 1:00:00</span>" in row_html(html, first)
    assert 'value="17"' in row_html(html, first)  # 10 min of 60: the bar
    assert "<span data-progress-text>Finished · 1:00:00</span>" in row_html(html, second)
    assert f'aria-label="Resume {first.title}"' in html


def test_a_book_library_page_counts_its_queries(books, listener, django_assert_max_num_queries):
    saga = make_album(books, "Saga", "A. Writer")
    made = [book(books, f"Book {n}", f"Author {n}", series=saga if n % 2 else None) for n in range(30)]
    for track in made[:10]:
        progress_record(user=listener, track_id=track.pk, position_ms=60_000, device_id="phone")
    client = signed_in(listener)

    # session, user, library (+ grant check), count, the page's books, their progress
    with django_assert_max_num_queries(7):
        html = text_of(client.get(f"/libraries/{books.pk}/"))

    assert len(rows_of(html)) == 30


def test_a_podcast_library_lists_its_shows_then_episodes_newest_first(
    tmp_path, listener, django_assert_max_num_queries
):
    podcasts = LibraryFactory(name="Pods", kind=LibraryKind.PODCAST, root=tmp_path / "p")
    LibraryAccessFactory(user=listener, library=podcasts)
    show, other_show = make_album(podcasts, "Tone Talk", ""), make_album(podcasts, "Noise Notes", "")
    aged(make_track(podcasts, "Episode 1", album=show), days=30)
    aged(make_track(podcasts, "Episode 2", album=show), days=20)
    aged(make_track(podcasts, "Noise 1", album=other_show), days=25)
    newest = aged(make_track(podcasts, "Episode 3", album=show), days=1)
    progress_record(user=listener, track_id=newest.pk, position_ms=90_000, device_id="phone")
    client = signed_in(listener)

    with django_assert_max_num_queries(8):
        html = text_of(client.get(f"/libraries/{podcasts.pk}/"))

    shows_part = html.split('id="shows-title"')[1].split('id="episodes-title"')[0]
    assert re.findall(r'class="album-title">([^<]+)<', shows_part) == ["Noise Notes", "Tone Talk"]
    assert rows_of(html.split('id="episodes-title"')[1]) == ["Episode 3", "Episode 2", "Noise 1", "Episode 1"]
    assert "Tone Talk · " in row_html(html, newest)
    assert "<span data-progress-text>1:30 of 3:20</span>" in row_html(html, newest)
    assert "4 episodes" in html


def test_library_pages_show_nothing_of_a_library_without_a_grant(tmp_path, books, listener):
    vault = LibraryFactory(name="Vault", kind=LibraryKind.AUDIOBOOK, root=tmp_path / "v")
    book(vault, "Secret Book", "Hidden Author")
    book(books, "Open Book", "Known Author")

    client = signed_in(listener)

    assert client.get(f"/libraries/{vault.pk}/").status_code == 404
    home = text_of(client.get("/"))
    assert "Open Book" in home and "Secret Book" not in home and "Hidden Author" not in home


def test_home_recently_added_shows_albums_books_and_episodes_newest_first(tmp_path, books, listener):
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=tmp_path / "m")
    podcasts = LibraryFactory(name="Pods", kind=LibraryKind.PODCAST, root=tmp_path / "p")
    for library in (music, podcasts):
        LibraryAccessFactory(user=listener, library=library)
    album = make_album(music, "Blue Hours", "The Tones")
    make_track(music, "Morning Tone", album=album)
    Album.objects.filter(pk=album.pk).update(created_at=timezone.now() - timedelta(days=2))
    aged(book(books, "Walden", "H. D. Thoreau"), days=3)
    show = make_album(podcasts, "Tone Talk", "")
    aged(make_track(podcasts, "Episode 9", album=show), days=1)

    html = text_of(signed_in(listener).get("/"))

    recent = html.split('id="recent-title"')[1]
    cards = re.findall(r'data-kind="(\w+)">.*?class="album-title">([^<]+)<.*?class="album-sub">([^<]+)<', recent, re.S)
    assert cards == [
        ("episode", "Episode 9", "Episode · Tone Talk"),
        ("album", "Blue Hours", "The Tones"),
        ("book", "Walden", "Book · H. D. Thoreau"),
    ]
