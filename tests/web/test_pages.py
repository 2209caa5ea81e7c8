"""The web player's pages through Django's test client: access rules, search and filters, sign-in and
sign-out, and the query counts of the list pages. The browser tests are in tests/e2e/test_web_player.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.library.models import Album, Chapter, Library, LibraryKind, Track
from apps.playback.services import progress_record
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"

PAGES = ["/", "/libraries/", "/albums/", "/tracks/", "/history/"]


def make_album(library: Library, title: str, artist: str, *, year: int | None = None) -> Album:
    return Album.objects.create(library=library, title=title, album_artist=artist, artists=[artist], year=year)


def make_track(
    library: Library,
    title: str,
    *,
    album: Album | None = None,
    number: int | None = None,
    artists: tuple[str, ...] = ("Someone",),
    genres: tuple[str, ...] = (),
    duration_ms: int = 200_000,
) -> Track:
    track = TrackFactory(
        library=library,
        album=album,
        title=title,
        artists=list(artists),
        genres=list(genres),
        track_number=number,
        duration_ms=duration_ms,
    )
    if album is not None:
        album.track_count += 1
        album.duration_ms += duration_ms
        album.save(update_fields=["track_count", "duration_ms"])
    return track


@dataclass
class World:
    listener: object
    outsider: object
    music: Library
    books: Library
    hidden: Library
    album: Album
    song: Track
    other_song: Track
    series: Album
    book: Track
    secret_album: Album
    secret: Track


@pytest.fixture
def world(tmp_path) -> World:
    users = get_user_model().objects
    listener = users.create_user("listener", password=PASSWORD)
    outsider = users.create_user("outsider", password=PASSWORD)
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=tmp_path / "m")
    books = LibraryFactory(name="Books", kind=LibraryKind.AUDIOBOOK, root=tmp_path / "b")
    hidden = LibraryFactory(name="Vault", kind=LibraryKind.MUSIC, root=tmp_path / "h")
    LibraryAccessFactory(user=listener, library=music)
    LibraryAccessFactory(user=listener, library=books)
    album = make_album(music, "Blue Hours", "The Tones", year=2019)
    song = make_track(music, "Morning Tone", album=album, number=1, artists=("The Tones",), genres=("Ambient",))
    other_song = make_track(music, "Evening Hum", album=album, number=2, artists=("The Tones", "Guest"),
                            genres=("Jazz",))  # fmt: skip
    series = make_album(books, "Sine Saga", "A. Writer")
    book = make_track(books, "The First Wave", album=series, artists=("A. Writer",), duration_ms=3_600_000)
    Chapter.objects.bulk_create(
        [
            Chapter(track=book, index=0, title="Opening", start_ms=0, end_ms=1_800_000),
            Chapter(track=book, index=1, title="Crest", start_ms=1_800_000, end_ms=3_600_000),
        ]
    )
    secret_album = make_album(hidden, "Forbidden Album", "Secret Band")
    secret = make_track(hidden, "Forbidden Song", album=secret_album, artists=("Secret Band",), genres=("Ambient",))
    return World(listener, outsider, music, books, hidden, album, song, other_song, series, book, secret_album, secret)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    return response.content.decode()


# --- Access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/libraries/1/", "/albums/1/", "/tracks/1/"])
def test_signed_out_every_page_leads_to_the_sign_in_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_every_page_has_the_player_bar_and_the_sign_in_page_has_none(world, client):
    listener = signed_in(world.listener)
    paths = [*PAGES, f"/libraries/{world.music.pk}/", f"/albums/{world.album.pk}/", f"/tracks/{world.song.pk}/"]
    for path in paths:
        response = listener.get(path)
        assert response.status_code == 200, path
        assert 'id="player"' in text_of(response), path
        assert 'data-swap="main"' in text_of(response), path
        assert response.cookies.get("csrftoken"), path  # the player's API calls need it
    assert 'id="player"' not in text_of(client.get("/login/"))


def test_pages_hold_no_inline_script_style_or_handlers(world):
    """The Content-Security-Policy allows none of them: they would be blocked in the browser."""
    listener = signed_in(world.listener)
    paths = [*PAGES, f"/albums/{world.album.pk}/", f"/tracks/{world.book.pk}/", "/login/", "/nowhere/"]
    for path in paths:
        html = text_of(listener.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html, path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "javascript:" not in html, path
    response = listener.get("/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_without_a_grant_a_library_leaves_no_trace(world):
    listener = signed_in(world.listener)
    hidden_urls = [
        f"/libraries/{world.hidden.pk}/",
        f"/albums/{world.secret_album.pk}/",
        f"/tracks/{world.secret.pk}/",
    ]
    for path in hidden_urls:
        response = listener.get(path)
        assert response.status_code == 404, path
        assert "Vault" not in text_of(response) and "Forbidden" not in text_of(response)
    # Indistinguishable from ids that do not exist.
    assert listener.get("/tracks/999999/").status_code == 404
    listings = [
        *PAGES,
        "/tracks/?q=Forbidden",
        "/tracks/?artist=Secret+Band",
        "/tracks/?genre=Ambient",
        f"/tracks/?library={world.hidden.pk}",
        "/albums/?q=Forbidden",
        f"/albums/?library={world.hidden.pk}",
    ]
    for path in listings:
        html = re.sub(r"<form.*?</form>", "", text_of(listener.get(path)), flags=re.S)  # the query echoed back
        # A link to the library, not its bare id: a small id also appears as e.g. the sleep timer's value="30".
        for trace in ("Vault", "Forbidden", "Secret Band", f'href="/libraries/{world.hidden.pk}/"'):
            assert trace not in html, (path, trace)


def test_an_outsider_without_any_grant_sees_empty_lists(world):
    outsider = signed_in(world.outsider)

    assert "You have no library yet." in text_of(outsider.get("/libraries/"))
    assert "0 tracks" in text_of(outsider.get("/tracks/"))
    assert outsider.get(f"/albums/{world.album.pk}/").status_code == 404


def test_staff_see_every_library(world):
    staff = get_user_model().objects.create_user("boss", password=PASSWORD, is_staff=True)
    html = text_of(signed_in(staff).get("/libraries/"))

    assert "Music" in html and "Books" in html and "Vault" in html


# --- Pages ----------------------------------------------------------------------------------------------


def test_home_continues_listening_from_the_progress_api_and_shows_recent_albums(world):
    progress_record(user=world.listener, track_id=world.book.pk, position_ms=600_000, device_id="phone")
    progress_record(user=world.listener, track_id=world.song.pk, position_ms=0, device_id="phone")

    html = text_of(signed_in(world.listener).get("/"))

    continue_part = html.split('id="continue-title"')[1].split('id="recent-title"')[0]
    assert "The First Wave" in continue_part and "10:00 of 1:00:00" in continue_part
    assert "Morning Tone" not in continue_part  # position 0: not started
    recent_part = html.split('id="recent-title"')[1]
    assert "Blue Hours" in recent_part and "Sine Saga" in recent_part
    assert "Forbidden" not in html


def test_album_page_lists_its_tracks_in_order_with_the_queue(world):
    html = text_of(signed_in(world.listener).get(f"/albums/{world.album.pk}/"))

    assert html.index("Morning Tone") < html.index("Evening Hum")
    assert f'data-queue="{world.song.pk},{world.other_song.pk}"' in html
    assert f'data-play="{world.song.pk}"' in html


def test_book_page_lists_its_chapters_and_the_resume_point(world):
    progress_record(user=world.listener, track_id=world.book.pk, position_ms=1_900_000, device_id="phone")

    html = text_of(signed_in(world.listener).get(f"/tracks/{world.book.pk}/"))

    assert "Opening" in html and "Crest" in html
    assert 'data-start-ms="1800000"' in html
    assert "Stopped at 31:40 on phone" in html


def test_track_search_and_filters(world):
    listener = signed_in(world.listener)

    def titles(query: str) -> list[str]:
        html = text_of(listener.get(f"/tracks/?{query}"))
        return re.findall(r'class="track-title" href="[^"]+">([^<]+)<', html)

    assert titles("") == ["Evening Hum", "Morning Tone", "The First Wave"]
    assert titles("q=hum") == ["Evening Hum"]
    # By artist, best first: 'Morning Tone' is also a similar spelling of the words (search ranking).
    assert titles("q=the+tones") == ["Morning Tone", "Evening Hum"]
    assert titles("q=saga") == ["The First Wave"]  # album title
    assert titles("genre=Jazz") == ["Evening Hum"]
    assert titles("artist=Guest") == ["Evening Hum"]
    assert titles(f"library={world.books.pk}") == ["The First Wave"]
    # The two songs last as long: ties go by id, so pages are stable.
    assert titles("ordering=-duration") == ["The First Wave", "Morning Tone", "Evening Hum"]


def test_a_bad_filter_value_is_ignored_with_a_notice_not_an_error(world):
    response = signed_in(world.listener).get("/tracks/?library=abc")

    assert response.status_code == 200
    assert "Ignored the library filter" in text_of(response)
    assert "3 tracks" in text_of(response)


def test_album_search_and_filters(world):
    listener = signed_in(world.listener)

    def titles(query: str) -> list[str]:
        return re.findall(r'class="album-title">([^<]+)<', text_of(listener.get(f"/albums/?{query}")))

    assert titles("") == ["Blue Hours", "Sine Saga"]
    assert titles("q=blue") == ["Blue Hours"]
    assert titles("artist=A.+Writer") == ["Sine Saga"]
    assert titles(f"library={world.music.pk}") == ["Blue Hours"]


def test_history_lists_listens_newest_first(world):
    progress_record(user=world.listener, track_id=world.song.pk, position_ms=150_000, device_id="phone")
    progress_record(user=world.listener, track_id=world.other_song.pk, position_ms=150_000, device_id="laptop")

    html = text_of(signed_in(world.listener).get("/history/"))

    assert html.index("Evening Hum") < html.index("Morning Tone")
    assert "laptop" in html and "phone" in html


# --- Sign-in and sign-out ---------------------------------------------------------------------------------


def test_sign_in_with_the_form_and_go_where_you_were_going(world, client):
    page = client.get("/login/?next=/albums/")
    assert page.status_code == 200 and 'name="next" value="/albums/"' in text_of(page)

    response = client.post("/login/", {"username": "listener", "password": PASSWORD, "next": "/albums/"})

    assert response.status_code == 302 and response["Location"] == "/albums/"
    assert client.get("/albums/").status_code == 200


def test_a_wrong_password_shows_an_error_and_signs_nobody_in(world, client):
    response = client.post("/login/", {"username": "listener", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in text_of(response)
    assert client.get("/").status_code == 302


def test_sign_in_attempts_share_the_api_budget_per_address(world, client):
    """The shipped TOKEN_LOGIN_RATE (10/min) counts web and API sign-ins together, per client address."""
    api_codes = [
        client.post(
            "/api/v1/auth/token", {"username": "listener", "password": "nope"}, content_type="application/json"
        ).status_code
        for _ in range(5)
    ]
    web_codes = [client.post("/login/", {"username": "listener", "password": "nope"}).status_code for _ in range(5)]

    response = client.post("/login/", {"username": "listener", "password": PASSWORD})
    elsewhere = Client(REMOTE_ADDR="192.0.2.10").post("/login/", {"username": "listener", "password": PASSWORD})

    assert api_codes == [401] * 5 and web_codes == [200] * 5
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in text_of(response)
    assert client.get("/").status_code == 302  # the right password did not get in either
    assert elsewhere.status_code == 302  # another address has its own budget


def test_sign_out_is_a_post(world):
    listener = signed_in(world.listener)

    assert listener.get("/logout/").status_code == 405
    response = listener.post("/logout/")

    assert response.status_code == 302 and response["Location"] == "/login/"
    assert listener.get("/").status_code == 302


def test_signed_in_users_skip_the_sign_in_page(world):
    assert signed_in(world.listener).get("/login/")["Location"] == "/"


# --- Query counts ---------------------------------------------------------------------------------------------


def _grow(world: World, count: int) -> None:
    album = make_album(world.music, "Big Album", "Many")
    for number in range(count):
        make_track(world.music, f"Extra {number}", album=album, number=number, genres=(f"G{number % 5}",))
    for track in Track.objects.filter(library=world.music)[:count]:
        progress_record(user=world.listener, track_id=track.pk, position_ms=10_000, device_id="phone")


@pytest.mark.parametrize("path", ["/", "/libraries/", "/albums/", "/tracks/", "/history/", "/tracks/?q=extra"])
def test_list_pages_do_not_query_per_row(world, path, django_assert_max_num_queries):
    listener = signed_in(world.listener)
    listener.get(path)  # warm the session
    _grow(world, 40)

    with django_assert_max_num_queries(10):
        response = listener.get(path)

    assert response.status_code == 200


def test_album_page_does_not_query_per_track(world, django_assert_max_num_queries):
    listener = signed_in(world.listener)
    _grow(world, 30)
    album = Album.objects.get(title="Big Album")

    with django_assert_max_num_queries(8):
        response = listener.get(f"/albums/{album.pk}/")

    assert text_of(response).count("data-track-row=") == 30
