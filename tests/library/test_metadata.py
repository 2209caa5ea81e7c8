"""Reading real files (written by ffmpeg, retagged with mutagen) into normalised metadata."""

from __future__ import annotations

import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TPE1
from mutagen.mp4 import MP4

from apps.library.scanner.grouping import _names
from apps.library.scanner.metadata import UnreadableFile, read_metadata
from tests.audio import make_audio

TAGS = {"title": "Song", "artist": "Someone", "album": "Record", "album_artist": "Band", "track": "3/12", "disc": "2"}


def read(path):
    return read_metadata(str(path), path.stat().st_size)


@pytest.mark.parametrize(
    ("name", "format_", "codec", "sample_rate"),
    [
        ("a.mp3", "mp3", "mp3", 44100),
        ("a.m4a", "mp4", "aac", 44100),
        ("a.flac", "flac", "flac", 44100),
        ("a.ogg", "ogg", "vorbis", 44100),
        ("a.opus", "ogg", "opus", 48000),
        ("a.wav", "wav", "pcm", 44100),
    ],
)
def test_stream_properties_of_every_format(tmp_path, name, format_, codec, sample_rate):
    metadata = read(make_audio(tmp_path / name, seconds=3, tags=TAGS))

    assert (metadata.format, metadata.codec, metadata.sample_rate_hz, metadata.channels) == (
        format_,
        codec,
        sample_rate,
        2,
    )
    assert 2950 <= metadata.duration_ms <= 3100
    assert metadata.bitrate_kbps and metadata.bitrate_kbps > 16
    if format_ != "wav":  # ffmpeg writes RIFF INFO in WAV, which is not a tag format mutagen reads
        assert metadata.tags["title"] == ["Song"]
        assert metadata.tags["albumartist"] == ["Band"]
        assert metadata.tags["tracknumber"][0].startswith("3")


def test_alac_in_m4a_is_alac(tmp_path):
    assert read(make_audio(tmp_path / "lossless.m4a", codec="alac")).codec == "alac"


def test_id3_separators_and_numeric_genres(tmp_path):
    path = make_audio(tmp_path / "multi.mp3")
    tags = ID3(path)
    tags.add(TPE1(encoding=3, text=["Alice / Bob; Carol", "Dave"]))
    tags.add(TCON(encoding=3, text=["(17)", "Jazz;Blues"]))
    tags.save(path)

    metadata = read(path)

    assert metadata.tags["artist"] == ["Alice / Bob; Carol", "Dave"]
    assert metadata.tags["genre"] == ["Rock", "Jazz;Blues"]
    assert _names(metadata.tags["artist"], True, frozenset()) == ["Alice", "Bob", "Carol", "Dave"]
    assert _names(["AC/DC"], True, frozenset({"AC/DC"})) == ["AC/DC"]
    assert _names(["AC/DC; Band / Other"], True, frozenset({"AC/DC"})) == ["AC/DC", "Band", "Other"]
    assert _names(["Sun/Moon"], False, frozenset()) == ["Sun/Moon"]  # "/" splits only in ID3


def test_vorbis_repeated_fields_and_mp4_atoms_are_lists(tmp_path):
    flac_path = make_audio(tmp_path / "multi.flac")
    flac = FLAC(flac_path)
    flac["artist"] = ["Alice", "Bob"]
    flac["genre"] = ["Ambient", "Drone"]
    flac.save()
    mp4_path = make_audio(tmp_path / "multi.m4a")
    mp4 = MP4(mp4_path)
    mp4["©ART"] = ["Alice", "Bob"]
    mp4["----:com.apple.iTunes:SERIES"] = [b"The Saga"]
    mp4.save()

    assert read(flac_path).tags["artist"] == ["Alice", "Bob"]
    assert read(flac_path).tags["genre"] == ["Ambient", "Drone"]
    assert read(mp4_path).tags["artist"] == ["Alice", "Bob"]
    assert read(mp4_path).tags["series"] == ["The Saga"]


def test_chapters_from_m4b_and_id3_chap(tmp_path):
    chapters = [("Opening", 0, 1500), ("Middle", 1500, 3000), ("End", 3000, 4000)]
    m4b = read(make_audio(tmp_path / "book.m4b", seconds=4, chapters=chapters))
    mp3 = read(make_audio(tmp_path / "show.mp3", seconds=4, chapters=chapters))

    assert [(c["title"], c["start_ms"]) for c in m4b.chapters] == [("Opening", 0), ("Middle", 1500), ("End", 3000)]
    assert m4b.chapters[-1]["end_ms"] == m4b.duration_ms
    assert mp3.chapters == [
        {"title": "Opening", "start_ms": 0, "end_ms": 1500},
        {"title": "Middle", "start_ms": 1500, "end_ms": 3000},
        {"title": "End", "start_ms": 3000, "end_ms": 4000},
    ]


def test_unreadable_files_say_why(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("these are my notes, not music\n" * 50)
    truncated = tmp_path / "cut.flac"
    truncated.write_bytes(make_audio(tmp_path / "whole.flac").read_bytes()[:60])

    with pytest.raises(UnreadableFile, match="empty file"):
        read(empty)
    with pytest.raises(UnreadableFile, match="sync|MPEG|recognised"):
        read(text)
    with pytest.raises(UnreadableFile):
        read(truncated)
