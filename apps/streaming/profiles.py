"""The rendition ladder: which encodings every track is pre-transcoded into.

Pure data (no Django imports), so that settings.py can validate STREAMING_PROFILES at start.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass

# Bump when the ffmpeg command changes in a way that changes the output: every rendition key changes with
# it, so old folders are rebuilt and then collected.
TRANSCODER_VERSION = 1


@dataclass(frozen=True)
class Profile:
    name: str
    codec: str  # ffmpeg encoder
    bitrate_kbps: int | None  # None: lossless
    hls_codecs: str  # the CODECS attribute of the master playlist (RFC 6381)
    client_codec: str  # what a client lists in ?codecs= to say it plays this

    @property
    def lossless(self) -> bool:
        return self.bitrate_kbps is None


# AAC-LC stereo tiers (the upstream design's 64, 128, 192/256, 320 kbps) and a lossless FLAC tier.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("aac-64", "aac", 64, "mp4a.40.2", "aac"),
        Profile("aac-128", "aac", 128, "mp4a.40.2", "aac"),
        Profile("aac-192", "aac", 192, "mp4a.40.2", "aac"),
        Profile("aac-256", "aac", 256, "mp4a.40.2", "aac"),
        Profile("aac-320", "aac", 320, "mp4a.40.2", "aac"),
        Profile("flac", "flac", None, "fLaC", "flac"),
    )
}
DEFAULT_PROFILES = ("aac-64", "aac-128", "aac-256")


class SegmentFormat(enum.StrEnum):
    """HLS segments: fMP4 (`init.mp4` + `.m4s`, any codec) or MPEG-TS (`.ts`, no FLAC)."""

    FMP4 = "fmp4"
    MPEGTS = "mpegts"


SEGMENT_FORMATS = tuple(SegmentFormat)


@dataclass(frozen=True)
class Ladder:
    """Everything that shapes the bytes of a track's renditions, apart from the source itself."""

    profiles: tuple[Profile, ...]
    segment_format: SegmentFormat
    segment_seconds: int

    def rendition_key(self, source_fingerprint: str) -> str:
        """Changes with the source files and with any setting that changes the output: a folder under one
        key is immutable, so everything in it can be cached forever."""
        spec = {
            "source": source_fingerprint,
            "profiles": [asdict(p) for p in self.profiles],
            "format": self.segment_format,
            "segment_s": self.segment_seconds,
            "version": TRANSCODER_VERSION,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def segment_extension(self) -> str:
        return "m4s" if self.segment_format == SegmentFormat.FMP4 else "ts"


def ladder_check(names: list[str], segment_format: str) -> str | None:
    """Why this ladder cannot be built, or None."""
    if not names:
        return "at least one profile is needed"
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        return f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}"
    if len(set(names)) != len(names):
        return "a profile is listed twice"
    if segment_format not in SEGMENT_FORMATS:
        return f"segment format must be one of {', '.join(SEGMENT_FORMATS)}"
    if segment_format == SegmentFormat.MPEGTS and any(PROFILES[n].lossless for n in names):
        return "FLAC cannot be carried in MPEG-TS segments; use fmp4 or drop the flac profile"
    return None
