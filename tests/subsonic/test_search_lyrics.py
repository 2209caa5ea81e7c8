"""search2/search3 through the library's matcher (apps.library.search) and lyrics (songLyrics) through
library.selectors.track_lyrics: the same answers the REST API gives, in JSON and XML."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.library.models import Track, TrackLoudness
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.pipeline import scan
from tests.subsonic.conftest import PASSWORD
from tests.subsonic.schemas import check, check_xml

pytestmark = pytest.mark.django_db


def call(method: str, *, fmt: str = "json", **params) -> dict:
    response = Client().get(f"/rest/{method}", {"u": "listener", "p": PASSWORD, "c": "t", "f": fmt, **params})
    return check_xml(response.content) if fmt == "xml" else check(json.loads(response.content))


@pytest.fixture
def world(tmp_path, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    media = tmp_path / "music"
    for name, artist in (("Beyoncé Halo", "Beyoncé"), ("Summertime", "Ella"), ("Autumn Leaves", "Ella")):
        make_audio(media / f"{name}.mp3", seconds=1.0, tags={"title": name, "artist": artist, "album": "Mix"})
    (media / "Summertime.lrc").write_text("[la:eng]\n[00:00.50]Summertime\n[00:01.20]and the livin' is easy\n")
    library = LibraryFactory(root=media)
    scan(library)
    LibraryAccessFactory(user=UserFactory(username="listener", password=PASSWORD), library=library)
    return {title: Track.objects.get(title=title) for title in ("Beyoncé Halo", "Summertime", "Autumn Leaves")}


def test_search_uses_the_library_matcher(world):
    def titles(query: str) -> list[str]:
        return [song["title"] for song in call("search3", query=query)["searchResult3"]["song"]]

    assert titles("beyonce") == ["Beyoncé Halo"]  # accents folded
    assert titles("sumertime") == ["Summertime"]  # a typo
    assert titles("autumn") == ["Autumn Leaves"]
    assert titles("s")[:1] == ["Summertime"]  # one character still searches (apps search as you type)
    assert sorted(titles('""')) == ["Autumn Leaves", "Beyoncé Halo", "Summertime"]
    as_xml = call("search3", fmt="xml", query="ella")["searchResult3"]
    assert [a["name"] for a in as_xml["artist"]] == ["Ella"]
    assert call("search2", query="x" * 1000)["error"]["code"] == 10


def test_lyrics_by_song_id_and_by_title(world):
    summertime, halo = world["Summertime"], world["Beyoncé Halo"]
    answer = call("getLyricsBySongId", id=f"tr-{summertime.pk}")["lyricsList"]["structuredLyrics"]
    synced = answer[0]
    lines = [{"start": 500, "value": "Summertime"}, {"start": 1200, "value": "and the livin' is easy"}]
    assert (synced["lang"], synced["synced"], synced["displayTitle"], synced["line"]) == (
        "eng", True, "Summertime", lines,
    )  # fmt: skip
    assert (
        call("getLyricsBySongId", fmt="xml", id=f"tr-{summertime.pk}")["lyricsList"]["structuredLyrics"][0]["line"]
        == synced["line"]
    )
    assert call("getLyricsBySongId", id=f"tr-{halo.pk}")["lyricsList"] == {"structuredLyrics": []}
    assert call("getLyricsBySongId", id="tr-999999")["error"]["code"] == 70
    legacy = call("getLyrics", artist="Ella", title="summertime")["lyrics"]
    assert legacy["title"] == "Summertime" and "livin' is easy" in legacy["value"]
    assert call("getLyrics", artist="Nobody", title="Summertime")["lyrics"] == {}
    extensions = {e["name"] for e in call("getOpenSubsonicExtensions")["openSubsonicExtensions"]}
    assert "songLyrics" in extensions


def test_songs_carry_replay_gain_from_the_measured_loudness(world):
    """OpenSubsonic's replayGain: the REST API's gains (GET /api/v1/tracks/<id>/loudness) and linear peaks,
    in JSON and XML; a measurement of other audio (older fingerprint) is not used; nothing measured, none."""
    summertime, halo = world["Summertime"], world["Beyoncé Halo"]
    TrackLoudness.objects.create(
        track=summertime, source_fingerprint=summertime.source_fingerprint, integrated_lufs=-12.0, range_lu=3.0,
        true_peak_dbtp=-0.5,
    )  # fmt: skip
    TrackLoudness.objects.create(
        track=halo, source_fingerprint="older audio", integrated_lufs=-30.0, range_lu=3.0, true_peak_dbtp=-9.0
    )
    album = summertime.album
    album.loudness_lufs, album.true_peak_dbtp = -20.0, -6.0
    album.save(update_fields=["loudness_lufs", "true_peak_dbtp"])

    for fmt in ("json", "xml"):
        song = call("getSong", fmt=fmt, id=f"tr-{summertime.pk}")["song"]
        # -18 - (-12) = -6 dB; the peak -0.5 dBTP would allow +-0.5: -6 stays. Album: +2 dB, peak -6: room for 5.
        assert song["replayGain"] == {"trackGain": -6.0, "albumGain": 2.0, "trackPeak": 0.944061, "albumPeak": 0.501187}
        # Halo's measurement is of older audio, and its album (Beyoncé's "Mix", not Ella's) is unmeasured.
        assert halo.album_id != album.pk
        assert "replayGain" not in call("getSong", fmt=fmt, id=f"tr-{halo.pk}")["song"]
    rest = Client()
    rest.force_login(get_user_model().objects.get(username="listener"))
    assert rest.get(f"/api/v1/tracks/{summertime.pk}/loudness").json()["track_gain_db"] == -6.0
