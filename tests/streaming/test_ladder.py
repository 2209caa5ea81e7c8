"""The ladder fitted to the source (profiles.ladder_fit, STREAMING_LADDER=fitted): no lossy rung above the
source's bitrate, a single-file AAC copied into the segments instead of encoded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import m3u8
import pytest
from django.conf import settings

from apps.library.models import Track
from apps.streaming.profiles import PROFILES, SegmentFormat, Source, ladder_fit
from apps.streaming.selectors import track_rendition_key
from apps.streaming.services import master_playlist_for_playback, stream_start
from tests.audio import make_audio
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import ready, scan
from tests.streaming.hls_checks import check_media_playlist, rendition_dir

DEFAULT = tuple(PROFILES[n] for n in ("aac-64", "aac-128", "aac-256"))
FMP4, TS = SegmentFormat.FMP4, SegmentFormat.MPEGTS


def names(configured, segment_format, codecs, bitrate_kbps, lossless=False) -> list[str]:
    source = Source(codecs=codecs, bitrate_kbps=bitrate_kbps, lossless=lossless)
    return [p.name for p in ladder_fit(configured, segment_format, source)]


def test_fit_rules():
    # A 64 kbit/s AAC book: copied, nothing encoded (64 is above 3/4 of 64).
    assert names(DEFAULT, FMP4, ("aac",), 64) == ["aac-copy"]
    # The same book with MPEG-TS segments cannot be copied: one encode at its class.
    assert names(DEFAULT, TS, ("aac",), 64) == ["aac-64"]
    # Several AAC files (each with its own priming): encoded, not copied.
    assert names(DEFAULT, FMP4, ("aac", "aac"), 64) == ["aac-64"]
    # A 96 kbit/s MP3: 64 and a 96-class rung, not 128 or 256; a VBR one averaging 94 alike.
    assert names(DEFAULT, FMP4, ("mp3",), 96) == ["aac-64", "aac-96"]
    assert names(DEFAULT, FMP4, ("mp3",), 94) == ["aac-64", "aac-96"]
    # A 128 kbit/s MP3: 64 and 128. A 320 kbit/s one: today's ladder (its top rung is the configured top).
    assert names(DEFAULT, FMP4, ("mp3",), 128) == ["aac-64", "aac-128"]
    assert names(DEFAULT, FMP4, ("mp3",), 320) == ["aac-64", "aac-128", "aac-256"]
    # A 256 kbit/s AAC: 64 and 128 below it, then itself.
    assert names(DEFAULT, FMP4, ("aac",), 256) == ["aac-64", "aac-128", "aac-copy"]
    # A 32 kbit/s Opus: one rung of its class. Under the lowest class: the lowest class.
    assert names(DEFAULT, FMP4, ("opus",), 32) == ["aac-32"]
    assert names(DEFAULT, FMP4, ("opus",), 16) == ["aac-32"]
    # Never above the configured top, and a top already kept is not doubled.
    assert names(DEFAULT[:2], FMP4, ("mp3",), 320) == ["aac-64", "aac-128"]
    # Lossless sources keep the configured ladder, FLAC included; a lossy source never gets FLAC.
    with_flac = (*DEFAULT, PROFILES["flac"])
    assert names(with_flac, FMP4, ("flac",), 900, lossless=True) == ["aac-64", "aac-128", "aac-256", "flac"]
    assert names(with_flac, FMP4, ("mp3",), 96) == ["aac-64", "aac-96"]
    # Unknown bitrate: the configured lossy ladder.
    assert names(with_flac, FMP4, ("mp3",), None) == ["aac-64", "aac-128", "aac-256"]


def decoded_ms(playlist: Path) -> int:
    result = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-i", str(playlist), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    times = [line.rsplit("time=", 1)[1].split()[0] for line in result.stderr.splitlines() if "time=" in line]
    hours, minutes, seconds = times[-1].split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


@pytest.mark.django_db
def test_aac_book_is_copied(media: Path, settings):
    settings.STREAMING_LADDER = "fitted"
    make_audio(media / "book.m4b", seconds=20, tags={"title": "book"})
    library = LibraryFactory(root=media)
    scan(library)
    track = Track.objects.get(library=library)
    _, fitted_key = track_rendition_key(track=track)
    settings.STREAMING_LADDER = "full"
    assert track_rendition_key(track=track)[1] != fitted_key  # the key changes with the fitted ladder
    settings.STREAMING_LADDER = "fitted"

    rows = ready(track)
    assert [(r.profile, r.codecs, r.rendition_key) for r in rows] == [("aac-copy", "mp4a.40.2", fitted_key)]
    folder = rendition_dir(rows[0])
    check_media_playlist(folder, fmp4=True, source_ms=track.duration_ms)
    assert abs(decoded_ms(folder / "index.m3u8") - 20_000) <= 500
    # The source's packets as they are: the copied audio's bytes equal the source's (no re-encode).
    copied = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-i", str(folder / "index.m3u8")]
        + ["-map", "0:a", "-c", "copy", "-f", "adts", "-"],
        capture_output=True,
        check=True,
    ).stdout
    original = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-i", str(media / "book.m4b")]
        + ["-map", "0:a", "-c", "copy", "-f", "adts", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert copied == original and len(copied) > 100_000

    master = m3u8.loads(master_playlist_for_playback(track=track, codecs=None, max_bitrate_kbps=None))
    assert [(p.uri.rsplit("/", 2)[1], p.stream_info.codecs) for p in master.playlists] == [("aac-copy", "mp4a.40.2")]
    decision = stream_start(user=UserFactory(is_staff=True), track=track, codecs=["mp3"], max_bitrate_kbps=None)
    assert decision.mode == "hls" and [v["profile"] for v in decision.variants] == ["aac-copy"]


@pytest.mark.django_db
def test_96k_mp3_gets_64_and_96(media: Path, settings):
    settings.STREAMING_LADDER = "fitted"
    make_audio(media / "song.mp3", seconds=8, tags={"title": "song"}, codec_args=("-b:a", "96k"))
    library = LibraryFactory(root=media)
    scan(library)
    track = Track.objects.get(library=library)
    assert track.files.get().bitrate_kbps == 96
    rows = ready(track)
    assert sorted(r.profile for r in rows) == ["aac-64", "aac-96"]
    for row in rows:
        check_media_playlist(rendition_dir(row), fmp4=True, source_ms=track.duration_ms)
        nominal = int(row.profile.split("-")[1]) * 1000
        assert 0.6 * nominal < row.average_bitrate_bps < 1.3 * nominal, (row.profile, row.average_bitrate_bps)
