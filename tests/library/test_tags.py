"""What the scanner reads beyond title and artist (issue 14 items 6-9, issue 13 finding 9): discs and their
subtitles, compilations, several album artists, podcast episodes' dates and descriptions, MP3s cut short.

Real files (ffmpeg, then retagged with mutagen the way taggers and podcast apps write them), a real scan into
PostgreSQL, checked through the REST API that clients read.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest
from django.conf import settings
from mutagen.flac import FLAC
from mutagen.id3 import COMM, ID3, TCMP, TDES, TDRC, TDRL, TPE2, TPOS, TSST, TXXX
from mutagen.mp4 import MP4
from mutagen.oggvorbis import OggVorbis
from rest_framework.test import APIClient

from apps.library.models import AudioFile, LibraryKind
from apps.library.scanner.grouping import published
from apps.library.scanner.metadata import read_metadata
from apps.library.selectors import artist_albums
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


@pytest.fixture
def api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


def get(api: APIClient, url: str, **params) -> dict:
    response = api.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def rows(api: APIClient, url: str, **params) -> list[dict]:
    return get(api, url, page_size=500, **params)["results"]


def id3(path, *frames, v2_version: int = 4):
    tags = ID3(path)
    for frame in frames:
        tags.add(frame)
    tags.save(path, v2_version=v2_version)
    return path


def vorbis(path, **fields: list[str]):
    """Vorbis comments (FLAC or Ogg), each field given as its list of repeated values."""
    audio = FLAC(path) if path.suffix == ".flac" else OggVorbis(path)
    for key, values in fields.items():
        audio[key] = values
    audio.save()
    return path


def mp4(path, atoms: dict):
    audio = MP4(path)
    audio.update(atoms)
    audio.save()
    return path


def set_mtime(path, moment: datetime) -> None:
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# Item 6: discs


def test_each_track_keeps_its_disc_and_subtitle_and_an_album_plays_disc_by_disc(media, api):
    box = media / "Box"
    album = {"album": "Box", "album_artist": "Band"}
    # File names sort against the play order: disc 2's files first, "10" before "9"; numbers restart per disc.
    late_one = make_audio(box / "a.mp3", seconds=1, tags={**album, "title": "Late one", "track": "1"})
    id3(late_one, TPOS(encoding=3, text="2/2"), TSST(encoding=3, text="Later"))
    late_two = make_audio(box / "b.flac", seconds=1, tags={**album, "title": "Late two", "track": "2"})
    vorbis(late_two, DISCNUMBER=["2"], DISCSUBTITLE=["Later"])
    for name, number, title in [("c 10.mp3", "10", "Early ten"), ("d 9.mp3", "9", "Early nine")]:
        early = make_audio(box / name, seconds=1, tags={**album, "title": title, "track": number, "disc": "1/2"})
        id3(early, TSST(encoding=3, text="The Early Years"))
    scan(LibraryFactory(root=media))

    [listed] = rows(api, "/api/v1/albums", artist="Band")
    tracks = get(api, f"/api/v1/albums/{listed['id']}")["tracks"]

    assert [(t["disc_number"], t["disc_subtitle"], t["track_number"], t["title"]) for t in tracks] == [
        (1, "The Early Years", 9, "Early nine"),
        (1, "The Early Years", 10, "Early ten"),
        (2, "Later", 1, "Late one"),
        (2, "Later", 2, "Late two"),
    ]
    one = get(api, f"/api/v1/tracks/{tracks[3]['id']}")
    assert (one["disc_number"], one["disc_subtitle"]) == (2, "Later")


# Item 7: compilations


def various(folder, name: str, artist: str, album: str):
    """A compilation track as taggers leave it: a track artist, no album artist."""
    return make_audio(folder / name, seconds=1, tags={"title": f"{artist} song", "artist": artist, "album": album})


def test_a_compilation_is_one_various_artists_album_whichever_format_flags_it(media, api):
    for name in ("1.mp3", "2.mp3"):  # iTunes writes TCMP into ID3v2.3
        id3(various(media / "id3", name, f"Singer {name[0]}", "Now ID3"), TCMP(encoding=3, text="1"), v2_version=3)
    for name in ("1.m4a", "2.m4a"):
        mp4(various(media / "mp4", name, f"Singer {name[0]}", "Now MP4"), {"cpil": True})
    for name in ("1.ogg", "2.flac"):
        vorbis(various(media / "vorbis", name, f"Singer {name[0]}", "Now Vorbis"), COMPILATION=["1"])
    # MusicBrainz Picard's release type: a TXXX frame (ID3v2.3 joins values with "/"), an MP4 freeform atom,
    # a Vorbis field (RELEASETYPE, MUSICBRAINZ_ALBUMTYPE before Picard 1.0).
    release_type = ["album", "compilation"]
    picard = various(media / "mb", "1.mp3", "Singer 1", "Now MB")
    id3(picard, TXXX(encoding=3, desc="MusicBrainz Album Type", text=release_type), v2_version=3)
    vorbis(various(media / "mb", "2.flac", "Singer 2", "Now MB"), MUSICBRAINZ_ALBUMTYPE=release_type)
    vorbis(various(media / "mb", "3.ogg", "Singer 3", "Now MB"), RELEASETYPE=release_type)
    freeform = {"----:com.apple.iTunes:MusicBrainz Album Type": [b"album", b"compilation"]}
    mp4(various(media / "mb", "4.m4a", "Singer 4", "Now MB"), freeform)
    # A compilation with its album artist tagged keeps it; an album that is no compilation stays one per artist.
    for number in (1, 2):
        tags = {"title": f"Mix {number}", "artist": f"Singer {number}", "album": "Mixed", "album_artist": "DJ Kay"}
        id3(make_audio(media / "mix" / f"{number}.mp3", seconds=1, tags=tags), TCMP(encoding=3, text="1"))
        various(media / "split", f"{number}.mp3", f"Singer {number}", "Split")
    scan(LibraryFactory(root=media))

    albums = {(a["title"], a["album_artist"], a["compilation"], a["track_count"]) for a in rows(api, "/api/v1/albums")}

    assert albums == {
        ("Now ID3", "Various Artists", True, 2),
        ("Now MP4", "Various Artists", True, 2),
        ("Now Vorbis", "Various Artists", True, 2),
        ("Now MB", "Various Artists", True, 4),
        ("Mixed", "DJ Kay", True, 2),
        ("Split", "Singer 1", False, 1),
        ("Split", "Singer 2", False, 1),
    }
    mb, *similar = rows(api, "/api/v1/albums", q="Now MB")  # best first, then similar titles ("Now MP4")
    assert mb["title"] == "Now MB" and {album["title"] for album in similar} <= {"Now ID3", "Now MP4", "Now Vorbis"}
    assert (mb["album_artists"], mb["release_type"], sorted(mb["artists"])) == (
        ["Various Artists"],
        "album; compilation",
        ["Singer 1", "Singer 2", "Singer 3", "Singer 4"],
    )
    compiled = rows(api, "/api/v1/tracks", artist="Various Artists")
    assert len(compiled) == 10 and {t["album_artists"][0] for t in compiled} == {"Various Artists"}


def test_an_artist_finds_what_they_are_album_artist_of_and_what_they_only_appear_on(media, api, staff):
    own = {"album": "Own Record", "album_artist": "Band", "date": "2001"}
    make_audio(media / "own" / "1.mp3", seconds=1, tags={**own, "title": "Opener", "artist": "Band"})
    make_audio(media / "own" / "2.mp3", seconds=1, tags={**own, "title": "Duet", "artist": "Guest Singer"})
    for name, title, artist in [("1.mp3", "Hit", "Band"), ("2.mp3", "Miss", "Other")]:
        hit = make_audio(media / "hits" / name, seconds=1, tags={"title": title, "artist": artist, "album": "Hits"})
        id3(hit, TCMP(encoding=3, text="1"), TDRC(encoding=3, text="1999"))
    make_audio(media / "other" / "1.mp3", seconds=1, tags={"title": "Alone", "artist": "Other", "album": "Solo"})
    library = LibraryFactory(root=media)
    scan(library)

    def titles(**params) -> list[str]:
        return sorted(t["title"] for t in rows(api, "/api/v1/tracks", **params))

    # "Duet" is Guest Singer's track on Band's album: Band finds it through the album artist.
    assert titles(artist="Band") == ["Duet", "Hit", "Opener"]
    assert titles(artist="Guest Singer") == ["Duet"]
    assert titles(artist="Various Artists") == ["Hit", "Miss"]
    assert sorted(a["title"] for a in rows(api, "/api/v1/albums", artist="Band")) == ["Hits", "Own Record"]

    def names(albums) -> list[str]:
        return [album.title for album in albums]

    assert tuple(map(names, artist_albums(user=staff, name="Band"))) == (["Own Record"], ["Hits"])
    assert tuple(map(names, artist_albums(user=staff, name="Guest Singer"))) == ([], ["Own Record"])
    assert tuple(map(names, artist_albums(user=staff, name="Various Artists"))) == (["Hits"], [])
    # Scoped like every read: someone without a grant to the library sees no album of anyone.
    assert artist_albums(user=UserFactory(), name="Band") == ([], [])


# Item 8: several album artists


def test_several_album_artists_from_an_id3v23_slash_and_from_repeated_vorbis_fields(media, api):
    first = make_audio(media / "Duets" / "1.mp3", seconds=1, tags={"title": "One", "artist": "Alice", "album": "Duets"})
    id3(first, TPE2(encoding=3, text=["Alice", "Bob"]), v2_version=3)
    assert ID3(first)["TPE2"].text == ["Alice/Bob"]  # what an ID3v2.3 file holds: one string, "/" between names
    second = make_audio(media / "Duets" / "2.flac", seconds=1, tags={"title": "Two", "artist": "Bob", "album": "Duets"})
    vorbis(second, ALBUMARTIST=["Alice", "Bob"])
    band = make_audio(media / "AC" / "1.mp3", seconds=1, tags={"title": "Rock", "album": "Volts"})
    id3(band, TPE2(encoding=3, text="AC/DC"), v2_version=3)  # a name in LIBRARY_UNSPLIT_NAMES stays whole
    scan(LibraryFactory(root=media))

    [duets] = rows(api, "/api/v1/albums", artist="Bob")
    assert (duets["title"], duets["album_artists"], duets["album_artist"], duets["track_count"]) == (
        "Duets",
        ["Alice", "Bob"],
        "Alice, Bob",
        2,
    )
    tracks = rows(api, "/api/v1/tracks", artist="Bob")
    assert sorted((t["title"], t["artists"][0], t["album_artists"][1]) for t in tracks) == [
        ("One", "Alice", "Bob"),
        ("Two", "Bob", "Bob"),
    ]
    [volts] = rows(api, "/api/v1/albums", artist="AC/DC")
    assert (volts["title"], volts["album_artists"]) == ("Volts", ["AC/DC"])


# Item 9: podcast episodes


def test_episodes_are_dated_and_described_from_each_format_and_listed_newest_first(media, api):
    show = media / "Tech Talk"

    def episode(name: str, title: str):
        return make_audio(show / name, seconds=1, tags={"title": title, "artist": "Jane Host", "album": "Tech Talk"})

    # The release date (TDRL) wins over the recording date (TDRC).
    released = episode("a.mp3", "Released")
    id3(released, TDRL(encoding=3, text="2024-05-01T08:00:00"), TDRC(encoding=3, text="2020-01-01"))
    id3(released, COMM(encoding=3, lang="eng", desc="", text="Notes in a comment"))
    id3(episode("b.mp3", "Recorded"), TDRC(encoding=3, text="2024-03-02"), TDES(encoding=3, text="A long text"))
    mp4(episode("c.m4a", "Apple"), {"©day": ["2024-04-10T12:30:00Z"], "desc": ["Short description"]})
    mp4(episode("d.m4a", "Apple long"), {"©day": ["2024-01-15"], "ldes": ["Long description"]})
    vorbis(episode("e.ogg", "Vorbis"), DATE=["2024-02-20T10:00:00+02:00"], DESCRIPTION=["Vorbis notes"])
    undated = episode("f.mp3", "Undated")  # no date tag: when the file was written
    set_mtime(undated, utc(2024, 6, 1, 12, 0))
    library = LibraryFactory(root=media, kind=LibraryKind.PODCAST)
    scan(library)

    newest_first = [
        ("Undated", utc(2024, 6, 1, 12, 0), ""),
        ("Released", utc(2024, 5, 1, 8, 0), "Notes in a comment"),
        ("Apple", utc(2024, 4, 10, 12, 30), "Short description"),
        ("Recorded", utc(2024, 3, 2), "A long text"),
        ("Vorbis", utc(2024, 2, 20, 8, 0), "Vorbis notes"),
        ("Apple long", utc(2024, 1, 15), "Long description"),
    ]
    listed = rows(api, "/api/v1/tracks", library=library.pk)
    assert [(t["title"], instant(t["published_at"])) for t in listed] == [row[:2] for row in newest_first]
    described = [(t["title"], get(api, f"/api/v1/tracks/{t['id']}")["description"]) for t in listed]
    assert described == [(title, description) for title, _, description in newest_first]
    [tech_talk] = rows(api, "/api/v1/albums", library=library.pk)
    assert tech_talk["author"] == "Jane Host"
    shown = get(api, f"/api/v1/albums/{tech_talk['id']}")["tracks"]
    assert [t["title"] for t in shown] == [title for title, _, _ in newest_first]
    assert [t["title"] for t in rows(api, "/api/v1/tracks", album=tech_talk["id"])] == [t["title"] for t in shown]
    # An ordering asked for wins.
    assert [t["title"] for t in rows(api, "/api/v1/tracks", library=library.pk, ordering="title")] == sorted(
        title for title, _, _ in newest_first
    )


def test_a_music_library_is_still_listed_by_title(media, api):
    for title, date in [("Zebra", "2024-06-01"), ("Aardvark", "2001-01-01")]:
        make_audio(media / f"{title}.mp3", seconds=1, tags={"title": title, "date": date})
    library = LibraryFactory(root=media)
    scan(library)

    listed = rows(api, "/api/v1/tracks", library=library.pk)

    assert [(t["title"], t["published_at"]) for t in listed] == [("Aardvark", None), ("Zebra", None)]


def test_a_year_or_month_alone_is_its_first_day_unless_the_file_was_written_within_it():
    written = utc(2023, 7, 9, 18, 30)
    mtime_ns = int(written.timestamp()) * 1_000_000_000

    assert published({"date": ["2023"]}, mtime_ns) == written
    assert published({"date": ["2023-07"]}, mtime_ns) == written
    assert published({"date": ["2021"]}, mtime_ns) == utc(2021, 1, 1)
    assert published({"date": ["2023-02"]}, mtime_ns) == utc(2023, 2, 1)
    assert published({"date": ["2023-02-03 04:05:06"]}, mtime_ns) == utc(2023, 2, 3, 4, 5, 6)
    assert published({"releasedate": ["not a date"], "date": ["2020-05-06"]}, mtime_ns) == utc(2020, 5, 6)
    assert published({"date": ["0000"]}, mtime_ns) == written


def test_itunes_technical_comments_are_no_description(media, api):
    """iTunes leaves its volume and gapless figures in COMM frames (iTunNORM, iTunSMPB): not for a listener."""
    show = media / "Show"
    norm = " 000001F4 000001F4 00000E5C 00000E5C 00000000 00000000 00007FFF 00007FFF 00000000 00000000"
    for name, comment in [("plain.mp3", ""), ("described.mp3", "What this episode is about")]:
        episode = make_audio(show / name, seconds=1, tags={"title": name, "album": "Show"})
        id3(episode, COMM(encoding=3, lang="eng", desc="iTunNORM", text=norm))
        id3(episode, COMM(encoding=3, lang="eng", desc="iTunSMPB", text=" 00000000 00000210 000003A4"))
        if comment:
            id3(episode, COMM(encoding=3, lang="eng", desc="", text=comment))
    library = LibraryFactory(root=media, kind=LibraryKind.PODCAST)
    scan(library)

    described = {
        t["title"]: get(api, f"/api/v1/tracks/{t['id']}")["description"]
        for t in rows(api, "/api/v1/tracks", library=library.pk)
    }

    assert described == {"plain.mp3": "", "described.mp3": "What this episode is about"}


# Issue 13 finding 9: an MP3 cut short


def cut(path, fraction: float):
    """Keep the first `fraction` of the file's bytes, as an interrupted download or copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def vbr_mp3(path, seconds: int):
    command = [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"anoisesrc=duration={seconds}:sample_rate=44100:amplitude=0.3", "-ac", "2"]
    command += ["-c:a", "libmp3lame", "-q:a", "4", str(path)]
    subprocess.run(command, check=True, timeout=60)
    return path


def read(path):
    return read_metadata(str(path), path.stat().st_size)


def test_a_cbr_mp3_cut_short_has_the_duration_of_what_is_there_and_is_flagged(tmp_path):
    # LAME's Info header still claims the whole file's frames after the cut: the length mutagen reports.
    whole = read(make_audio(tmp_path / "whole.mp3", seconds=10))
    cut_short = read(cut(make_audio(tmp_path / "cut.mp3", seconds=10), 0.4))
    variable = read(vbr_mp3(tmp_path / "vbr.mp3", seconds=10))

    assert (whole.truncated, 9900 <= whole.duration_ms <= 10200) == (False, True)
    assert (cut_short.truncated, 3800 <= cut_short.duration_ms <= 4200) == (True, True)
    assert (variable.truncated, 9900 <= variable.duration_ms <= 10200) == (False, True)


def test_a_truncated_file_is_shown_as_such_until_it_is_whole_again(media, api):
    make_audio(media / "whole.mp3", seconds=10, tags={"title": "Whole"})
    partial = cut(make_audio(media / "partial.mp3", seconds=10, tags={"title": "Partial"}), 0.4)
    library = LibraryFactory(root=media)
    scan(library)

    def seconds(row: dict) -> int:
        return round(row["duration_ms"] / 1000)

    def shown() -> dict[str, tuple[bool, int, int]]:
        tracks = [get(api, f"/api/v1/tracks/{t['id']}") for t in rows(api, "/api/v1/tracks", library=library.pk)]
        return {t["title"]: (t["files"][0]["truncated"], seconds(t), seconds(t["files"][0])) for t in tracks}

    assert shown() == {"Whole": (False, 10, 10), "Partial": (True, 4, 4)}

    make_audio(partial, seconds=10, tags={"title": "Partial"})  # downloaded again, whole this time
    touch_later(partial)
    scan(library)

    assert shown() == {"Whole": (False, 10, 10), "Partial": (False, 10, 10)}
    assert not AudioFile.objects.filter(truncated=True).exists()


def test_a_date_out_of_range_in_utc_falls_back_to_the_file_time(media, api):
    """A date at the edge of the calendar whose offset takes it past year 9999 or before year 1 in UTC
    cannot be stored and read back: the next source counts, and the library still lists."""
    show = media / "Show"
    late = make_audio(show / "late.ogg", seconds=1, tags={"title": "Late"})
    vorbis(late, DATE=["9999-12-31T23:00:00-05:00"])
    early = make_audio(show / "early.flac", seconds=1, tags={"title": "Early"})
    vorbis(early, RELEASEDATE=["0001-01-01T01:00:00+05:00"], DATE=["2022-02-02"])
    set_mtime(late, utc(2025, 1, 1))
    library = LibraryFactory(root=media, kind=LibraryKind.PODCAST)
    scan(library)

    listed = rows(api, "/api/v1/tracks", library=library.pk)

    assert [(t["title"], instant(t["published_at"])) for t in listed] == [
        ("Late", utc(2025, 1, 1)),
        ("Early", utc(2022, 2, 2)),
    ]
