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
    copy: bool = False  # the source's own audio carried as it is (no decode, no encode): see ladder_fit

    @property
    def lossless(self) -> bool:
        return self.bitrate_kbps is None and not self.copy


# AAC-LC stereo tiers (the upstream design's 64, 128, 192/256, 320 kbps) and a lossless FLAC tier. The
# classes in between (32, 48, 96, 160) are the top rung a fitted ladder gives a lossy source of that bitrate
# (ladder_fit); `aac-copy` is the source's AAC carried as it is, never configured, only fitted.
AAC_COPY = "aac-copy"
AAC_KBPS = (32, 48, 64, 96, 128, 160, 192, 256, 320)
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        *(
            Profile(f"aac-{kbps}", "aac", kbps, "mp4a.40.2", "aac")
            for kbps in (32, 48, 64, 96, 128, 160, 192, 256, 320)
        ),
        Profile("flac", "flac", None, "fLaC", "flac"),
        Profile(AAC_COPY, "copy", None, "mp4a.40.2", "aac", copy=True),
    )
}
DEFAULT_PROFILES = ("aac-64", "aac-128", "aac-256")


class LadderMode(enum.StrEnum):
    """STREAMING_LADDER: `fitted` to each source (ladder_fit), or the `full` configured ladder for every track."""

    FITTED = "fitted"
    FULL = "full"


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
    # > 0: the track is transcoded in chunks of about this many seconds (apps.streaming.chunks), which lays
    # its segments on a grid of whole AAC frames: another set of files, so another key.
    chunk_seconds: int = 0

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
        if self.chunk_seconds:  # only then: the keys of every track played from one run stay as they were
            spec["chunk_s"] = self.chunk_seconds
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def chunkable(self) -> bool:
        """Only AAC encodes in fMP4 are cut into chunks: a copy's packets are on the source's grid, not the
        one the chunks are laid on, and FLAC frames are not AAC frames (both cost next to nothing to make in
        one run anyway); MPEG-TS would shift the times the chunks' segments are joined on."""
        encoded = all(not p.copy and not p.lossless for p in self.profiles)
        return encoded and self.segment_format == SegmentFormat.FMP4

    @property
    def segment_extension(self) -> str:
        return "m4s" if self.segment_format == SegmentFormat.FMP4 else "ts"


def ladder_check(names: list[str], segment_format: str) -> str | None:
    """Why this ladder cannot be built, or None."""
    if not names:
        return "at least one profile is needed"
    if AAC_COPY in names:
        return f"{AAC_COPY} is fitted to a source that can be copied, not configured"
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


@dataclass(frozen=True)
class Source:
    """What the ladder is fitted to: the track's files as the scanner read them."""

    codecs: tuple[str, ...]  # one per file, in play order ("aac", "mp3", "flac", ...)
    bitrate_kbps: int | None  # the highest of the files' bitrates; None when one is unknown
    lossless: bool  # every file is lossless

    @property
    def copyable(self) -> bool:
        """AAC in one file: its packets go into fMP4 segments as they are. Only one file: each AAC file
        starts with its own encoder priming, which a copied concat would play as a click at every join.
        MP3 is not copied: MP3 in fMP4 is not in Apple's HLS authoring spec (Safari-class players), and MP3
        in MPEG-TS cannot share a ladder with fMP4 rungs; so an MP3 gets a class rung (one AAC encode)."""
        return len(self.codecs) == 1 and self.codecs[0] == "aac"


# A configured rung is kept under a lossy source only if it is clearly below it: a rung at 3/4 of the
# source's bitrate or more adds nothing the top rung (the copy, or the source's class) does not give.
FIT_BELOW = 0.75
# Measured bitrates wobble around the nominal one (a 96k VBR MP3 averages 94): a source's class is the
# largest AAC class at most 10 % above its bitrate.
FIT_SLACK = 1.10


def ladder_fit(configured: tuple[Profile, ...], segment_format: SegmentFormat, source: Source) -> tuple[Profile, ...]:
    """The rungs a source gets (the rules, README "A ladder fitted to the source"):

    - a lossless source, or a lossy one of unknown bitrate: the configured ladder (FLAC only when lossless);
    - a lossy source of bitrate B: the configured lossy rungs at most 3/4 of B, then one top rung: the source
      itself copied when it can be (single-file AAC, fMP4 segments), else an AAC encode at B's class (the
      largest class at most 1.1 B), never above the configured top rung. No rung is above the source.
    """
    lossy = tuple(p for p in configured if not p.lossless)
    if source.lossless:
        return configured
    if source.bitrate_kbps is None or not lossy:
        return lossy or configured
    bitrate = source.bitrate_kbps
    below = tuple(p for p in lossy if p.bitrate_kbps is not None and p.bitrate_kbps <= FIT_BELOW * bitrate)
    if source.copyable and segment_format == SegmentFormat.FMP4:
        return (*below, PROFILES[AAC_COPY])
    top_configured = max(p.bitrate_kbps or 0 for p in lossy)
    classes = [kbps for kbps in AAC_KBPS if kbps <= FIT_SLACK * bitrate] or [AAC_KBPS[0]]
    top = PROFILES[f"aac-{min(classes[-1], top_configured)}"]
    return below if top in below else (*below, top)
