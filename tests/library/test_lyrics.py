"""Lyrics (issue 21): LRC parsing (pure), embedded frames in every format, sidecars picked up by the scan (a
changed .lrc is a changed file), non-UTF-8 and oversized input, and GET /api/v1/tracks/<id>/lyrics."""

from __future__ import annotations

import json

import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, SYLT, TXXX, USLT
from mutagen.mp4 import MP4
from rest_framework.test import APIClient

from apps.library.models import AudioFile, LibraryKind
from apps.library.scanner.lyrics import MAX_LYRICS_CHARS, Candidate, looks_like_lrc, parse_lrc, pick
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import scan

LRC = """\ufeff[ti:Song]
[ar:Someone]
[la:eng]
[offset:+200]
[00:01.00]First line
this line is garbage
[00:05.50][00:20.5]<00:05.50>Chorus <00:06.10>with <00:06.40>words
[00:03:00]Colon centiseconds
[-00:00.50]Before the start
[12:99.00]Bad seconds
[00:02.123]Milliseconds
[99:59]No fraction
"""


def test_parse_lrc_times_offsets_repeats_word_timing_garbage() -> None:
    parsed = parse_lrc(LRC)
    assert parsed.lines == [
        (0, "Before the start"),  # -500 - 200 → clamped to 0
        (800, "First line"),  # offset +200: shown 200 ms sooner
        (1923, "Milliseconds"),
        (2800, "Colon centiseconds"),
        (5300, "Chorus with words"),  # enhanced LRC's word times dropped
        (20300, "Chorus with words"),  # the second timestamp of the same line; sorted in
        (5_998_800, "No fraction"),
    ]
    assert parsed.language == "eng"
    assert parsed.skipped == 2  # the garbage line and [12:99.00]
    assert parsed.truncated is False


def test_parse_lrc_negative_offset_unsorted_and_cap() -> None:
    assert parse_lrc("[offset:-1000]\n[00:10.00]b\n[00:02.00]a\n[00:02.00]a2").lines == [
        (3000, "a"),
        (3000, "a2"),  # stable for equal times
        (11000, "b"),
    ]
    huge = "".join(f"[00:{i % 60:02d}.00]{'x' * 90}\n" for i in range(60_000))  # ~5.6 MB
    parsed = parse_lrc(huge)
    assert parsed.truncated is True
    assert len(parsed.lines) == MAX_LYRICS_CHARS // 101  # 101 characters a line: the whole lines under the cap


def test_pick_prefers_lrc_sidecar_then_sylt_and_keeps_plain() -> None:
    lyrics = pick(
        [
            Candidate(source="USLT", text="plain words\r\nline two", language="deu"),
            Candidate(source="SYLT", lines=((2000, "b"), (-5, "a")), language="fra"),
            Candidate(source="sidecar.lrc", text="[00:01.00]from lrc"),
        ]
    )
    assert lyrics.synced == [(1000, "from lrc")]
    assert lyrics.source == "sidecar.lrc"
    assert lyrics.plain == "plain words\nline two"
    assert lyrics.language == "deu"  # the sidecar has none; the first that has one
    assert not looks_like_lrc("just words\n[chorus]")
    only_sylt = pick([Candidate(source="SYLT", lines=((2000, "b"), (-5, "a")))])
    assert only_sylt.synced == [(0, "a"), (2000, "b")]
    assert only_sylt.plain == "a\nb"


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


def lyrics_of(api: APIClient, path) -> dict:
    track_id = AudioFile.objects.get(path=path).track_id
    response = api.get(f"/api/v1/tracks/{track_id}/lyrics")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_embedded_lyrics_every_format(media, api) -> None:
    mp3 = make_audio(media / "a.mp3", seconds=1, tags={"title": "A"})
    tags = ID3(mp3)
    tags.add(USLT(encoding=0, lang="eng", desc="", text="Caf\xe9 au lait\nline 2"))  # Latin-1 frame
    tags.add(SYLT(encoding=3, lang="eng", format=2, type=1, text=[("one", 500), ("two", 1500)]))
    tags.save(mp3)
    sung = make_audio(media / "b.mp3", seconds=1, tags={"title": "B"})
    tags = ID3(sung)
    tags.add(TXXX(encoding=3, desc="LYRICS", text="[00:00.50]txxx lrc"))
    tags.save(sung)
    m4a = make_audio(media / "c.m4a", seconds=1, tags={"title": "C"})
    mp4 = MP4(m4a)
    mp4["\xa9lyr"] = ["[00:01.00]mp4 synced\n[00:02.00]second"]
    mp4.save()
    flac = make_audio(media / "d.flac", seconds=1, tags={"title": "D"})
    vorbis = FLAC(flac)
    vorbis["UNSYNCEDLYRICS"] = "vorbis plain ünïcode"
    vorbis.save()
    library = LibraryFactory(root=media, kind=LibraryKind.MUSIC)
    scan(library)

    assert lyrics_of(api, "a.mp3") == {
        "synced": [{"start_ms": 500, "text": "one"}, {"start_ms": 1500, "text": "two"}],
        "plain": "Café au lait\nline 2",
        "language": "eng",
        "origin": "SYLT",
    }
    assert lyrics_of(api, "b.mp3")["synced"] == [{"start_ms": 500, "text": "txxx lrc"}]
    assert lyrics_of(api, "c.m4a") == {
        "synced": [{"start_ms": 1000, "text": "mp4 synced"}, {"start_ms": 2000, "text": "second"}],
        "plain": "mp4 synced\nsecond",
        "language": "",
        "origin": "\xa9lyr",
    }
    assert lyrics_of(api, "d.flac") == {
        "synced": [],
        "plain": "vorbis plain ünïcode",
        "language": "",
        "origin": "UNSYNCEDLYRICS",
    }
    # Lyrics are not copied into the tags JSON that every listing reads.
    assert "lyrics" not in AudioFile.objects.get(path="b.mp3").tags
    assert "unsyncedlyrics" not in AudioFile.objects.get(path="d.flac").tags


@pytest.mark.django_db
def test_sidecars_rescan_encodings_and_caps(media, api) -> None:
    song = make_audio(media / "song.mp3", seconds=1, tags={"title": "S"})
    (media / "song.lrc").write_text("[00:00.10]first version\n", encoding="utf-8")
    (media / "other.txt").write_text("no audio file of that name", encoding="utf-8")
    legacy = make_audio(media / "legacy.mp3", seconds=1, tags={"title": "L"})
    (media / "legacy.txt").write_bytes("Привет".encode("cp1251"))
    utf16 = make_audio(media / "utf16.mp3", seconds=1, tags={"title": "U"})
    (media / "utf16.txt").write_bytes("ÀB\nline".encode("utf-16"))
    big = make_audio(media / "big.flac", seconds=1, tags={"title": "B"})
    vorbis = FLAC(big)
    vorbis["LYRICS"] = ("word " * 20 + "\n") * 50_000  # 5.05 MB of plain text
    vorbis.save()
    library = LibraryFactory(root=media, kind=LibraryKind.MUSIC)
    first = scan(library)
    assert first.added == 4

    assert lyrics_of(api, "song.mp3")["synced"] == [{"start_ms": 100, "text": "first version"}]
    refused = AudioFile.objects.get(path="legacy.mp3")
    assert refused.lyrics == {}
    assert refused.lyrics_error == "legacy.txt: not UTF-8 or UTF-16 with a BOM (byte 0xcf at 0); not read"
    assert lyrics_of(api, "utf16.mp3")["plain"] == "ÀB\nline"
    capped = AudioFile.objects.get(path="big.flac")
    # Cut at the last line break below 256 KiB: 2595 whole lines of 101 characters, less the last line's
    # break and trailing space.
    assert len(capped.lyrics["plain"]) == 2595 * 101 - 2
    assert capped.lyrics_error == "LYRICS: over 256 KiB; cut"

    unchanged = scan(library)
    assert (unchanged.updated, unchanged.unchanged) == (0, 4)
    # An edited .lrc next to an unchanged audio file: the file is read again, its lyrics replaced.
    (media / "song.lrc").write_text("[00:00.20]second version\n", encoding="utf-8")
    touch_later(media / "song.lrc")
    edited = scan(library)
    assert (edited.updated, edited.unchanged) == (1, 3)
    assert lyrics_of(api, "song.mp3")["synced"] == [{"start_ms": 200, "text": "second version"}]
    assert json.loads(json.dumps(edited.changed_track_ids)) == []  # same audio: nothing to transcode again
    (media / "song.lrc").unlink()
    removed = scan(library)
    assert removed.updated == 1
    assert lyrics_of(api, "song.mp3") == {"synced": [], "plain": "", "language": "", "origin": ""}
    assert song.exists() and legacy.exists() and utf16.exists()


@pytest.mark.django_db
def test_lyrics_api_hides_what_the_user_may_not_see(media) -> None:
    make_audio(media / "s.mp3", seconds=1, tags={"title": "S"})
    (media / "s.lrc").write_text("[00:01.00]secret\n", encoding="utf-8")
    library = LibraryFactory(root=media, kind=LibraryKind.MUSIC)
    scan(library)
    track_id = AudioFile.objects.get(path="s.mp3").track_id
    client = APIClient()
    client.force_authenticate(UserFactory())  # no grant
    response = client.get(f"/api/v1/tracks/{track_id}/lyrics")
    assert response.status_code == 404
    assert "secret" not in response.content.decode()
    assert client.get("/api/v1/tracks/999999/lyrics").status_code == 404
