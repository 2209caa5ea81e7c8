"""Test audio, generated with the real ffmpeg at test time: tones with tags and chapters."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings

CODEC_ARGS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "3"],
    ".m4a": ["-c:a", "aac", "-b:a", "64k", "-f", "mp4"],
    ".m4b": ["-c:a", "aac", "-b:a", "64k", "-f", "mp4"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "1"],
    ".opus": ["-c:a", "libopus", "-b:a", "32k"],
    ".wav": ["-c:a", "pcm_s16le"],
}

_cache: dict[tuple, Path] = {}
_CACHE_DIR = tempfile.TemporaryDirectory(prefix="revenge-test-audio-")


def make_audio(
    path: Path,
    *,
    seconds: float = 2.0,
    tags: dict[str, str] | None = None,
    chapters: list[tuple[str, int, int]] | None = None,
    frequency: int = 440,
    channels: int = 2,
    codec: str | None = None,
    codec_args: tuple[str, ...] = (),
) -> Path:
    """Write a sine tone to `path` (format from its extension), with ffmpeg's standard tag names
    (title, artist, album, album_artist, genre, track, disc, date) and chapters (title, start_ms, end_ms)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = (path.suffix, seconds, tuple(sorted((tags or {}).items())), tuple(chapters or ()), frequency, channels, codec)
    key += codec_args
    if key in _cache and _cache[key].exists():
        shutil.copyfile(_cache[key], path)
        return path
    command = [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}"]
    if chapters:
        metadata = path.with_suffix(path.suffix + ".ffmeta")
        lines = [";FFMETADATA1"]
        for title, start_ms, end_ms in chapters:
            lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}", f"title={title}"]
        metadata.write_text("\n".join(lines) + "\n")
        command += ["-f", "ffmetadata", "-i", str(metadata), "-map", "0:a", "-map_chapters", "1"]
    command += ["-ac", str(channels)]
    for name, value in (tags or {}).items():
        command += ["-metadata", f"{name}={value}"]
    command += ["-c:a", codec] if codec else CODEC_ARGS[path.suffix.lower()]
    command += codec_args  # after the defaults, so they win: e.g. ("-q:a", "4") for a VBR MP3
    command.append(str(path))
    subprocess.run(command, check=True, timeout=60)
    if chapters:
        metadata.unlink()
    # Keep a private copy: a test may later corrupt or touch its file, which must not leak into others.
    _cache[key] = Path(_CACHE_DIR.name) / f"{len(_cache)}{path.suffix}"
    shutil.copyfile(path, _cache[key])
    return path


def touch_later(path: Path, seconds: int = 10) -> None:
    """Move the mtime forward so a rescan sees the file as changed even within one clock tick."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))
