"""What a transcode's output must be, checked on the files: the media playlist (RFC 8216 and the issue's
asks, contiguous fMP4 fragments read from their boxes), a rendition's folder, what ffmpeg decoded."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import m3u8
from django.conf import settings

from apps.streaming.models import Rendition


def rendition_dir(rendition: Rendition) -> Path:
    return settings.RENDITIONS_ROOT / rendition.folder_name


def check_media_playlist(folder: Path, *, fmp4: bool, source_ms: int) -> m3u8.M3U8:
    """Everything RFC 8216 and the issue ask of a VOD media playlist, and contiguous segments."""
    text = (folder / "index.m3u8").read_text()
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    assert playlist.is_independent_segments
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)
    assert abs(sum(s.duration for s in playlist.segments) * 1000 - source_ms) <= 500
    assert all("/" not in s.uri for s in playlist.segments)  # relative: one signature covers the folder
    if fmp4:
        assert [m.uri for m in playlist.segment_map] == ["init.mp4"]
        # Contiguous: each fragment starts where the previous segments end (tfdt, in the track timescale).
        timescale = _mdhd_timescale((folder / "init.mp4").read_bytes())
        elapsed = 0.0
        for segment in playlist.segments:
            start = _tfdt((folder / segment.uri).read_bytes()) / timescale
            assert abs(start - elapsed) < 0.03, (segment.uri, start, elapsed)
            elapsed += segment.duration
    else:
        assert not playlist.segment_map
        assert all(s.uri.endswith(".ts") for s in playlist.segments)
    return playlist


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        yield kind.decode("latin-1"), start, start + size
        start += size


def _find(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> tuple[int, int]:
    for kind, box_start, box_end in _boxes(data, start, end):
        if kind == path[0]:
            header = 8
            return (box_start, box_end) if len(path) == 1 else _find(data, path[1:], box_start + header, box_end)
    raise AssertionError(f"no {path[0]} box")


def _tfdt(data: bytes) -> int:
    start, _ = _find(data, ["moof", "traf", "tfdt"])
    version = data[start + 8]
    return struct.unpack(">Q" if version == 1 else ">I", data[start + 12 : start + (20 if version == 1 else 16)])[0]


def _mdhd_timescale(data: bytes) -> int:
    start, _ = _find(data, ["moov", "trak", "mdia", "mdhd"])
    version = data[start + 8]
    offset = start + 12 + (16 if version == 1 else 8)
    return struct.unpack(">I", data[offset : offset + 4])[0]


def decoded_seconds(ffmpeg_stderr: str) -> float:
    """The last `time=` that `ffmpeg -i ... -f null -` printed (-stats)."""
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", ffmpeg_stderr)
    assert times, ffmpeg_stderr[-2000:]
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)
