"""A listening scenario against a live server (pytest-django's live_server: a real HTTP server on loopback)
driven by the real client libraries `py-opensonic` (libopensonic) and `py-sonic` (libsonic): each auth style,
browse, search, stream at 64 and 320 kbit/s and raw (every body decoded by ffmpeg), scrobble, the play queue,
and a book bookmarked in an app and resumed through the REST API (and back)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from urllib.parse import urlparse

import libopensonic
import libsonic
import pytest
import requests
from django.conf import settings

from apps.accounts.services import api_token_issue, app_password_create
from apps.library.models import LibraryKind, Track
from apps.playback.selectors import listen_list
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.pipeline import ready, scan
from tests.streaming.hls_checks import decoded_seconds
from tests.subsonic.conftest import PASSWORD
from tests.subsonic.schemas import check, check_xml

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def decode_s(body: bytes) -> float:
    run = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-stats", "-i", "pipe:0", "-f", "null", "-"],
        input=body, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return decoded_seconds(run.stderr.decode(errors="replace"))


def opensonic_bytes(connection: libopensonic.Connection, response) -> bytes:
    """py-opensonic hands back its aiohttp response: read it on the connection's own event loop."""
    return asyncio.run_coroutine_threadsafe(response.read(), connection._loop).result(timeout=60)


@pytest.fixture
def world(tmp_path):
    music = tmp_path / "music"
    for number, name in ((1, "First"), (2, "Second")):
        make_audio(music / "Ann" / "Record" / f"0{number} {name}.mp3", seconds=14.0,
                   tags={"title": name, "artist": "Ann", "album": "Record", "album_artist": "Ann", "track": str(number),
                         "genre": "Jazz", "date": "1999"}, codec_args=("-b:a", "192k"))  # fmt: skip
    books = tmp_path / "books"
    for index in (1, 2):
        make_audio(books / "Writer" / "Tale" / f"{index:02d}.mp3", seconds=10.0, frequency=300 + 50 * index)
    music_library = LibraryFactory(root=music)
    book_library = LibraryFactory(root=books, kind=LibraryKind.AUDIOBOOK)
    scan(music_library)
    scan(book_library)
    user = UserFactory(username="listener", password=PASSWORD)
    for library in (music_library, book_library):
        LibraryAccessFactory(user=user, library=library)
    first = Track.objects.get(library=music_library, title="First")
    ready(first)
    return {
        "user": user,
        "first": first,
        "second": Track.objects.get(library=music_library, title="Second"),
        "book": Track.objects.get(library=book_library),
        "token": api_token_issue(user=user)[1],
        "app_password": app_password_create(user=user, name="phone")[1],
    }


def test_listening_with_py_opensonic_and_py_sonic(world, live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    url = urlparse(live_server.url)
    base, port = f"{url.scheme}://{url.hostname}", url.port
    first, book = world["first"], world["book"]

    # py-opensonic with an API key (apiKeyAuthentication).
    keyed = libopensonic.Connection(base, api_key=world["token"], port=port, app_name="opensonic-key")
    try:
        assert keyed.ping() is True
        extensions = {extension.name for extension in keyed.get_open_subsonic_extensions()}
        assert "apiKeyAuthentication" in extensions
        artists = keyed.get_artists()
        assert [a.name for index in artists.index for a in index.artist] == ["Ann"]
        albums = keyed.get_album_list2("alphabeticalByName")
        assert [(a.name, a.song_count, a.year) for a in albums] == [("Record", 2, 1999)]
        album = keyed.get_album(albums[0].id)
        assert [(s.title, s.track, s.duration) for s in album.song] == [("First", 1, 14), ("Second", 2, 14)]
        found = keyed.search3("", artist_count=0, album_count=0, song_count=500)
        assert sorted(s.title for s in found.song) == ["First", "Second", "Tale"]
        streamed = {}
        for max_kbps, fmt in ((64, None), (320, None), (320, "aac"), (0, "raw")):
            response = keyed.stream(f"tr-{first.pk}", max_bit_rate=max_kbps, tformat=fmt)
            body = opensonic_bytes(keyed, response)
            assert int(response.headers["Content-Length"]) == len(body)
            streamed[(max_kbps, fmt)] = (response.headers["Content-Type"], round(decode_s(body)), len(body))
        assert {key: value[:2] for key, value in streamed.items()} == {
            (64, None): ("audio/mp4", 14),  # the 192k source is over 64: the aac-64 rendition, one fMP4 file
            (320, None): ("audio/mpeg", 14),  # within 320: the original MP3
            (320, "aac"): ("audio/mp4", 14),  # another format asked: the best rendition within 320 (aac-256)
            (0, "raw"): ("audio/mpeg", 14),  # the original MP3
        }
        # 64 kbit/s is about a quarter of 256 kbit/s.
        assert 0.15 < streamed[(64, None)][2] / streamed[(320, "aac")][2] < 0.4
        # transcodeOffset: from the segment holding second 7 (6-12 s of 6 s segments): 8 s are left.
        response = keyed.stream(f"tr-{first.pk}", max_bit_rate=64, time_offset=7)
        assert round(decode_s(opensonic_bytes(keyed, response))) == 8
        hls = requests.get(f"{live_server.url}/rest/hls.m3u8", {"apiKey": world["token"], "id": f"tr-{first.pk}"})
        assert hls.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert hls.text.startswith("#EXTM3U") and hls.text.count("#EXT-X-STREAM-INF") == 3
    finally:
        keyed.cleanup()

    # py-opensonic with the app password, by token and salt (its default).
    tokened = libopensonic.Connection(base, "listener", world["app_password"], port=port, app_name="opensonic-pw")
    try:
        assert tokened.ping() is True
        listen_s = 1_790_000_000  # py-opensonic takes seconds and sends milliseconds
        assert tokened.scrobble(f"tr-{first.pk}", submission=True, listen_time=listen_s) is True
        assert tokened.scrobble(f"tr-{first.pk}", submission=True, listen_time=listen_s) is True  # sent again
        listens = listen_list(user=world["user"])  # the buffer's unflushed listens included
        assert [(listen.track_id, listen.listened_at.timestamp()) for listen in listens[0:10]] == [(first.pk, listen_s)]
        assert tokened.scrobble(f"tr-{first.pk}", submission=False) is True  # now playing
        playing = tokened.get_now_playing()
        assert [(entry.title, entry.username) for entry in playing] == [("First", "listener")]
    finally:
        tokened.cleanup()

    # py-sonic: the account password by token is refused with 41, then sent as p (enc:hex), as DSub does.
    by_token = libsonic.Connection(base, "listener", PASSWORD, port=port, appName="pysonic")
    with pytest.raises(libsonic.errors.SonicError) as refused:
        by_token.ping()
    # py-sonic maps 41 to its generic SonicError (no code kept): told apart by the message.
    assert type(refused.value) is libsonic.errors.SonicError
    assert str(refused.value).startswith("Token authentication works with app passwords only")
    legacy = libsonic.Connection(base, "listener", PASSWORD, port=port, appName="pysonic", legacyAuth=True)
    assert legacy.ping() is True
    second = world["second"]
    legacy.savePlayQueue([f"tr-{first.pk}", f"tr-{second.pk}"], current=f"tr-{second.pk}", position=3000)
    queue = legacy.getPlayQueue()["playQueue"]
    assert (queue["current"], queue["position"], [e["title"] for e in queue["entry"]]) == (
        f"tr-{second.pk}", 3000, ["First", "Second"],
    )  # fmt: skip

    # A book bookmarked in an app resumes there through the REST API, and back.
    legacy.createBookmark(f"tr-{book.pk}", 7000)
    rest = requests.Session()
    rest.headers["Authorization"] = f"Bearer {world['token']}"
    progress = rest.get(f"{live_server.url}/api/v1/progress/{book.pk}").json()
    assert progress["position_ms"] == 7000
    moved = rest.put(f"{live_server.url}/api/v1/progress/{book.pk}", json={"position_ms": 9000, "device_id": "web"})
    assert moved.status_code == 200, moved.text
    marks = legacy.getBookmarks()["bookmarks"]["bookmark"]
    assert [(m["entry"]["id"], m["position"]) for m in marks] == [(f"tr-{book.pk}", 9000)]

    # The same answers, raw, in JSON and XML against the schemas.
    salt = "f00d"
    auth = {"u": "listener", "t": hashlib.md5((world["app_password"] + salt).encode()).hexdigest(), "s": salt,
            "v": "1.16.1", "c": "schema"}  # fmt: skip
    for method, params in (("getBookmarks", {}), ("getPlayQueue", {}), ("getAlbumList2", {"type": "newest"}),
                           ("search3", {"query": ""}), ("getNowPlaying", {})):  # fmt: skip
        as_json = check(requests.get(f"{live_server.url}/rest/{method}", {**auth, **params, "f": "json"}).json())
        as_xml = check_xml(requests.get(f"{live_server.url}/rest/{method}.view", {**auth, **params}).content)
        assert as_json["status"] == as_xml["status"] == "ok", (method, as_json)
