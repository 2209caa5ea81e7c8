"""/rest/ as a protocol, through Django's test client: the envelope in XML and JSON from one tree, every auth
style and its error codes, the app password API, and the bad-input table."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import ApiToken as ApiTokenModel
from apps.accounts.models import AppPassword, SignInAttempt
from apps.accounts.services import api_token_issue
from apps.subsonic import auth
from tests.factories import AudioFileFactory, LibraryFactory, TrackFactory, UserFactory
from tests.subsonic.conftest import PASSWORD, grant
from tests.subsonic.schemas import check, check_xml, xml_tree

pytestmark = pytest.mark.django_db


def call(method: str, *, post: bool = False, fmt: str = "json", **params) -> dict:
    client = Client()
    params = {"v": "1.16.1", "c": "tests", "f": fmt, **params}
    response = (client.post if post else client.get)(f"/rest/{method}", params)
    assert response.status_code in (200, 404), response.status_code
    if fmt == "xml":
        return check_xml(response.content)
    return check(json.loads(response.content))


def pw(**extra) -> dict:
    return {"u": "listener", "p": PASSWORD, **extra}


def error_code(answer: dict) -> int | None:
    return answer["error"]["code"] if answer["status"] == "failed" else None


def test_ping_in_json_and_xml_says_the_same(listener):
    answer = call("ping", **pw())
    assert answer == {"status": "ok", "version": "1.16.1", "type": "revenge", "serverVersion": "0.1.0",
                      "openSubsonic": True}  # fmt: skip
    assert call("ping.view", fmt="xml", **pw()) == answer
    raw = Client().get("/rest/ping.view", {"u": "listener", "p": PASSWORD}).content.decode()
    assert raw.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<subsonic-response xmlns="http://subsonic.org/restapi"'
    )


def test_jsonp_wraps_the_json_answer(listener):
    response = Client().get("/rest/ping", {**pw(), "f": "jsonp", "callback": "cb"})
    assert response["Content-Type"].startswith("application/javascript")
    assert response.content.decode().startswith('cb({"subsonic-response":{"status":"ok"')


def test_extensions_need_no_credentials_and_list_what_is_implemented(db):
    answer = call("getOpenSubsonicExtensions")
    names = {item["name"] for item in answer["openSubsonicExtensions"]}
    assert names == {
        "apiKeyAuthentication",
        "formPost",
        "transcodeOffset",
        "indexBasedQueue",
        "songLyrics",
        "getPodcastEpisode",
    }


def test_unknown_method_is_a_subsonic_error_not_an_html_page(listener):
    response = Client().get("/rest/getEverything", {**pw(), "f": "json"})
    assert response.status_code == 404
    answer = check(json.loads(response.content))
    assert answer["error"] == {"code": 0, "message": "Unknown method: getEverything"}


def test_form_post_is_read_like_a_query(listener):
    assert call("ping", post=True, **pw())["status"] == "ok"
    assert call("ping", post=True, u="listener", p="wrong")["error"]["code"] == 40


def test_auth_styles_and_their_codes(listener, app_password):
    token = api_token_issue(user=listener)[1]
    salt = "c19b2d"
    md5 = hashlib.md5((app_password + salt).encode()).hexdigest()
    account_md5 = hashlib.md5((PASSWORD + salt).encode()).hexdigest()
    cases = [
        ({"apiKey": token}, None),
        ({"u": "listener", "p": PASSWORD}, None),
        ({"u": "listener", "p": "enc:" + PASSWORD.encode().hex()}, None),
        ({"u": "listener", "p": token}, None),
        ({"u": "listener", "p": app_password}, None),
        ({"u": "listener", "t": md5, "s": salt}, None),
        ({"u": "listener", "t": account_md5, "s": salt}, 41),  # the account password never works with t/s
        ({"u": "listener", "p": "wrong"}, 40),
        ({"u": "nobody", "p": PASSWORD}, 40),
        ({"u": "listener", "p": "enc:zz"}, 40),
        ({"apiKey": "rvg_not-a-token"}, 44),
        ({"apiKey": token, "u": "listener"}, 43),
        ({}, 10),
        ({"u": "listener"}, 10),
        ({"u": "listener", "t": md5}, 10),
        ({"u": "listener\x00", "p": PASSWORD}, 10),
    ]
    for params, expected in cases:
        assert error_code(call("ping", **params)) == expected, params


def test_a_revoked_app_password_is_wrong_credentials_with_both_styles(listener, app_password):
    row = AppPassword.objects.get(user=listener)
    client = Client()
    client.force_login(listener)
    assert client.delete(f"/api/v1/app-passwords/{row.pk}").status_code == 204
    md5 = hashlib.md5((app_password + "s1").encode()).hexdigest()
    assert error_code(call("ping", u="listener", t=md5, s="s1")) == 40
    assert error_code(call("ping", u="listener", p=app_password)) == 40


def test_failed_attempts_count_against_the_sign_in_budget(listener, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token_login": "3/min"}}
    for _ in range(3):
        assert error_code(call("ping", u="listener", p="wrong")) == 40
    assert SignInAttempt.objects.count() == 3
    blocked = call("ping", **pw())  # the right password, but this client is over budget
    assert blocked["error"]["code"] == 40 and "Too many failed sign-ins" in blocked["error"]["message"]
    assert SignInAttempt.objects.count() == 3


def test_app_password_api_shows_the_password_once_and_stores_it_encrypted(listener, settings):
    client = Client()
    client.force_login(listener)
    created = client.post("/api/v1/app-passwords", {"name": "Symfonium"}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    password = body["password"]
    assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", password)
    assert body["username"] == "listener" and body["server_url"] == "http://testserver/"
    listed = client.get("/api/v1/app-passwords").json()
    assert [(row["name"], row["hint"]) for row in listed] == [("Symfonium", password[:5])]
    assert password not in json.dumps(listed)
    row = AppPassword.objects.get()
    assert password.encode() not in bytes(row.secret_encrypted)
    salt = "abc"
    assert error_code(call("ping", u="listener", t=hashlib.md5((password + salt).encode()).hexdigest(), s=salt)) is None
    # Another user cannot revoke it: 404, and it still works.
    other = Client()
    other.force_login(UserFactory())
    assert other.delete(f"/api/v1/app-passwords/{row.pk}").status_code == 404
    assert error_code(call("ping", u="listener", p=password)) is None


def test_app_passwords_work_only_on_rest(listener, app_password):
    response = Client().post(
        "/api/v1/auth/token", {"username": "listener", "password": app_password}, content_type="application/json"
    )
    assert response.status_code == 401
    assert Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {app_password}").status_code == 401


def test_bad_input_table(listener):
    library = LibraryFactory()
    grant(listener, library)
    track = TrackFactory(library=library, title='<b>"Tom & Jerry"</b> \x01 ]]>')
    AudioFileFactory(track=track)
    hidden = TrackFactory()  # in a library the listener was not granted
    album_answer = call("getAlbumList2", type="newest", size=10**9, **pw())
    assert album_answer["status"] == "ok"
    cases = [
        ("getSong", {}, 10),
        ("getSong", {"id": f"tr-{hidden.pk}"}, 70),
        ("getSong", {"id": "tr-999999999"}, 70),
        ("getSong", {"id": f"al-{track.pk}"}, 70),
        ("getSong", {"id": "tr-abc"}, 70),
        ("getAlbum", {"id": f"tr-{track.pk}"}, 70),
        ("getArtist", {"id": "ar-!!!"}, 70),
        ("getAlbumList2", {}, 10),
        ("getAlbumList2", {"type": "byYear"}, 10),
        ("getAlbumList2", {"type": "nonsense"}, 10),
        ("getAlbumList2", {"type": "newest", "size": "ten"}, 10),
        ("getAlbumList2", {"type": "newest", "size": "-1"}, 10),
        ("getAlbumList2", {"type": "newest", "musicFolderId": hidden.library_id}, 70),
        ("search3", {}, 10),
        ("stream", {"id": f"tr-{hidden.pk}"}, 70),
        ("stream", {"id": f"tr-{track.pk}", "timeOffset": "999999"}, 10),
        ("scrobble", {"id": f"tr-{hidden.pk}"}, 70),
        ("createBookmark", {"id": f"tr-{track.pk}"}, 10),
        ("createBookmark", {"id": f"tr-{hidden.pk}", "position": "1000"}, 70),
        ("savePlayQueue", {"id": f"tr-{hidden.pk}"}, 70),
        ("getCoverArt", {"id": f"al-{track.pk}", "size": "-1"}, 10),
        ("getSongsByGenre", {"genre": "Jazz\x00"}, 10),  # NUL: refused before any query sees it
        ("getArtist", {"id": "ar-" + base64.urlsafe_b64encode(b"A\x00B").decode()}, 70),
        ("createPlaylist", {"name": "x" * 201}, 10),
        ("getAlbumList2", {"type": "newest", "offset": str(2**70)}, None),  # far past the end: nothing
    ]
    for method, params, expected in cases:
        assert error_code(call(method, **params, **pw())) == expected, (method, params)
    song = call("getSong", id=f"tr-{track.pk}", **pw())["song"]
    assert song["title"] == '<b>"Tom & Jerry"</b> \ufffd ]]>'
    assert call("getSong", fmt="xml", id=f"tr-{track.pk}", **pw())["song"]["title"] == song["title"]


def test_counts_are_capped_at_500(listener):
    library = LibraryFactory()
    grant(listener, library)
    for index in range(3):
        AudioFileFactory(track=TrackFactory(library=library, title=f"T{index}"))
    answer = call("search3", query="", songCount=10**9, **pw())
    assert len(answer["searchResult3"]["song"]) == 3
    answer = call("getRandomSongs", size=str(10**30), **pw())
    assert len(answer["randomSongs"]["song"]) == 3


def test_every_listing_says_the_same_in_xml_and_json(listener):
    library = LibraryFactory()
    grant(listener, library)
    track = TrackFactory(library=library, title="Song", artists=["Ann"], genres=["Jazz", "Blues"], year=1999)
    AudioFileFactory(track=track)
    from apps.library.models import Album

    album = Album.objects.create(library=library, title="Record", album_artist="Ann", album_artists=["Ann"],
                                 genres=["Jazz"], track_count=1, duration_ms=200_000, year=1999)  # fmt: skip
    track.album = album
    track.save()
    artist = call("getArtists", **pw())["artists"]["index"][0]["artist"][0]["id"]
    calls = [
        ("getMusicFolders", {}), ("getIndexes", {}), ("getArtists", {}), ("getArtist", {"id": artist}),
        ("getAlbum", {"id": f"al-{album.pk}"}), ("getSong", {"id": f"tr-{track.pk}"}),
        ("getMusicDirectory", {"id": artist}), ("getMusicDirectory", {"id": f"al-{album.pk}"}),
        ("getGenres", {}), ("getAlbumList", {"type": "alphabeticalByName"}),
        ("getAlbumList2", {"type": "byGenre", "genre": "Jazz"}), ("getSongsByGenre", {"genre": "Blues"}),
        ("search2", {"query": "Rec"}), ("search3", {"query": ""}), ("getUser", {"username": "listener"}),
        ("getLicense", {}), ("tokenInfo", {}), ("getArtistInfo2", {"id": artist}),
        ("getAlbumInfo2", {"id": f"al-{album.pk}"}), ("getTopSongs", {"artist": "Ann"}),
        ("getSimilarSongs2", {"id": f"tr-{track.pk}"}), ("getStarred2", {}), ("getNowPlaying", {}),
        ("getBookmarks", {}),
    ]  # fmt: skip
    for method, params in calls:
        as_json = call(method, **params, **pw())
        as_xml = call(method, fmt="xml", **params, **pw())
        assert as_json["status"] == "ok", (method, as_json)
        assert _without_empty_lists(as_json) == as_xml, method
    album_answer = call("getAlbum", id=f"al-{album.pk}", **pw())["album"]
    assert album_answer["song"][0]["genres"] == [{"name": "Jazz"}, {"name": "Blues"}]
    assert "userRating" not in album_answer and "starred" not in album_answer
    assert call("search3", query="rec", **pw())["searchResult3"]["album"][0]["name"] == "Record"


def _without_empty_lists(value):
    if isinstance(value, dict):
        return {k: _without_empty_lists(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_without_empty_lists(v) for v in value]
    return value


def test_xml_tree_reads_text_values():
    body = b'<subsonic-response xmlns="http://subsonic.org/restapi" status="ok" version="1.16.1" type="revenge" ' \
        b'serverVersion="1" openSubsonic="true"><genres><genre songCount="1" albumCount="1">Jazz</genre></genres>' \
        b'</subsonic-response>'  # fmt: skip
    assert xml_tree(body)["subsonic-response"]["genres"] == {
        "genre": [{"songCount": 1, "albumCount": 1, "value": "Jazz"}]
    }


def test_connect_an_app_page_creates_shows_once_and_revokes(listener):
    client = Client()
    client.force_login(listener)
    page = client.get("/connect/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    html = page.content.decode()
    assert '<code data-connect="server">http://testserver/</code>' in html
    assert '<code data-connect="username">listener</code>' in html
    assert "None yet." in html
    created = client.post("/connect/", {"name": "  Symfonium   on my phone "})
    body = created.content.decode()
    password = re.search(r'<code class="connect-password" data-connect="password">([a-z2-9-]+)</code>', body)[1]
    assert AppPassword.objects.get().name == "Symfonium on my phone"
    assert "<svg" in body and "shown only this once" in body
    salt = "9f"
    assert error_code(call("ping", u="listener", t=hashlib.md5((password + salt).encode()).hexdigest(), s=salt)) is None
    again = client.get("/connect/").content.decode()
    assert password not in again and f"<code>{password[:5]}…</code>" in again
    assert client.post("/connect/", {"name": "   "}).status_code == 400
    row = AppPassword.objects.get()
    other = Client()
    other.force_login(UserFactory())
    assert other.post(f"/connect/{row.pk}/revoke").status_code == 404
    assert client.post(f"/connect/{row.pk}/revoke").status_code == 302
    assert error_code(call("ping", u="listener", p=password)) == 40
    assert "None yet." in client.get("/connect/").content.decode()


def test_album_list_types(listener):
    from apps.library.models import Album
    from apps.playback.services import progress_record

    library = LibraryFactory()
    grant(listener, library)
    albums = {}
    for title, year in (("Alpha", 1990), ("Beta", 2005), ("Gamma", 2020)):
        genres = ["Jazz"] if title == "Beta" else ["Rock"]
        albums[title] = Album.objects.create(
            library=library, title=title, album_artist=f"{title} band", year=year, genres=genres, track_count=1
        )
        track = TrackFactory(library=library, album=albums[title], title=f"{title} song", duration_ms=100_000)
        albums[title].song = track
    progress_record(user=listener, track_id=albums["Beta"].song.pk, position_ms=90_000, device_id="d")
    progress_record(user=listener, track_id=albums["Gamma"].song.pk, position_ms=10_000, device_id="d")

    def names(list_type: str, **params) -> list[str]:
        answer = call("getAlbumList2", type=list_type, **params, **pw())
        return [album["name"] for album in answer["albumList2"]["album"]]

    assert names("alphabeticalByName") == ["Alpha", "Beta", "Gamma"]
    assert names("alphabeticalByArtist", size=2, offset=1) == ["Beta", "Gamma"]
    assert names("newest") == ["Gamma", "Beta", "Alpha"]
    assert names("byYear", fromYear=2021, toYear=1995) == ["Gamma", "Beta"]  # from > to: newest first
    assert names("byGenre", genre="Rock") == ["Alpha", "Gamma"]
    assert sorted(names("random")) == ["Alpha", "Beta", "Gamma"]
    assert names("highest") == names("starred") == []
    assert names("newest", musicFolderId=library.pk) == ["Gamma", "Beta", "Alpha"]
    from apps.playback.services import progress_buffer_flush

    progress_buffer_flush()  # frequent and recent read PostgreSQL (the buffer flushes every few seconds)
    assert names("frequent") == ["Beta"]  # played through (90 %): one listen
    assert names("recent") == ["Gamma", "Beta"]
    as_xml = call("getAlbumList", fmt="xml", type="alphabeticalByName", **pw())["albumList"]["album"]
    assert [a["title"] for a in as_xml] == ["Alpha", "Beta", "Gamma"]


def test_a_sign_in_is_remembered_for_a_few_seconds_by_its_exact_credentials(
    listener, app_password, monkeypatch, django_assert_num_queries
):
    clock = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: clock[0])
    md5 = hashlib.md5((app_password + "s1").encode()).hexdigest()
    by_token = {"u": "listener", "t": md5, "s": "s1"}
    assert error_code(call("ping", **by_token)) is None
    with django_assert_num_queries(0):  # no sign-in budget, no app password rows
        assert error_code(call("ping", **by_token)) is None
    # Other credentials are checked in full: another salt, or the wrong password (still counted).
    with django_assert_num_queries(2):
        assert error_code(call("ping", u="listener", t=hashlib.md5((app_password + "s2").encode()).hexdigest(),
                               s="s2")) is None  # fmt: skip
    assert error_code(call("ping", u="listener", t=md5, s="s2")) == 41
    assert SignInAttempt.objects.count() == 1
    # Revoked behind this process's back (another worker: a raw UPDATE, no signal): still trusted until
    # AUTH_CACHE_S has passed since the sign-in, then refused.
    AppPassword.objects.filter(user=listener).update(revoked_at=timezone.now())
    clock[0] += auth.AUTH_CACHE_S - 0.5
    assert error_code(call("ping", **by_token)) is None
    clock[0] += 1.0
    assert error_code(call("ping", **by_token)) == 40


def test_a_remembered_sign_in_is_forgotten_at_once_when_revoked_here(listener, app_password):
    md5 = hashlib.md5((app_password + "s1").encode()).hexdigest()
    assert error_code(call("ping", u="listener", t=md5, s="s1")) is None
    assert error_code(call("ping", u="listener", p=PASSWORD)) is None
    listener.set_password("a new password 2")
    listener.save()  # the account password changed: its remembered sign-in goes
    assert error_code(call("ping", u="listener", p=PASSWORD)) == 40
    token = api_token_issue(user=listener)[1]
    assert error_code(call("ping", apiKey=token)) is None
    ApiTokenModel.objects.filter(user=listener).delete()  # deleting the token (post_delete) forgets it
    assert error_code(call("ping", apiKey=token)) == 44
