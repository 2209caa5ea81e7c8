"""Chunked transcodes (issue 18, "start anywhere"): a long track is encoded in independent, segment-aligned
spans that run as separate tasks, the span holding the listener's position first. Pure: the plan, the ffmpeg
arguments of one chunk and the live playlist of a chunked rendition; no Django, no I/O.

Why the joins are seamless. AAC is a lapped transform: the audio of frame j is the overlap-add of packets
j-1 and j, and an encoder's first packet is priming (1024 samples) with nothing before it to overlap. So a
chunk is never cut where it starts: every chunk is encoded from PREROLL_FRAMES before its span to
POSTROLL_FRAMES after it, on the one AAC frame grid of the whole track (the seek is a multiple of 1024
samples), and the packets outside its span are dropped after the encoder (`noise=drop`), before the muxer.
The packets kept at a join are then two encoders' frames of the same audio on the same grid: the decoder
overlap-adds them as it would one encoder's (measured on pink noise + tone: the residual against the decoded
source around a join, 0.00247 rms, is the one-run encode's 0.00244; with a 1 s pre-roll the encoder's
first seconds show instead, 0.0042 rms for 3 s: its rate control settles over ~6 s, hence 8 s).
`setts` puts the packets on the track's timeline and `frag_discont` makes the fMP4 muxer keep it (tfdt is
the packet's own time, not the chunk's), so segments of any chunk follow each other as one run's do.

Segments are a whole number of AAC frames (`frames_per_segment`), cut by the HLS muxer at a duration just
under that (its cut is relative to the chunk's first packet, so the rounding never accumulates): every
segment of a chunk but the track's last is exactly planned, which the live playlist relies on to list a
segment's duration before it exists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

AAC_FRAME = 1024  # samples per AAC-LC packet
PREROLL_FRAMES = 344  # ~8 s at 44.1 kHz: see the module docstring
POSTROLL_FRAMES = 16  # the last kept packet's window and the encoder's look-ahead
# A track is chunked only when it has at least this many chunks' worth of audio (below it, one run).
CHUNK_MIN_RATIO = 1.5
# A last chunk shorter than this fraction of a chunk is merged into the one before it (a track's measured
# duration may be a little off: the last chunk runs to the end of the audio whatever it is).
LAST_CHUNK_MIN = 0.25


@dataclass(frozen=True)
class ChunkPlan:
    """The segment and chunk grid of one chunked rendition, in AAC frames of its output sample rate."""

    sample_rate_hz: int
    frames_per_segment: int
    segments_per_chunk: int
    chunk_count: int

    @property
    def chunk_frames(self) -> int:
        return self.frames_per_segment * self.segments_per_chunk

    @property
    def segment_s(self) -> float:
        return self.frames_per_segment * AAC_FRAME / self.sample_rate_hz

    def chunk_of(self, position_ms: int) -> int:
        """The chunk holding this position of the track (its priming packet counted, as the player's is)."""
        frame = position_ms * self.sample_rate_hz // (1000 * AAC_FRAME)
        return max(0, min(self.chunk_count - 1, frame // self.chunk_frames))

    def order(self, lead: int) -> list[int]:
        """The chunk at the listener's position, then on to the end (where the listener is going), then the
        beginning (where a seek back would go)."""
        return [*range(lead, self.chunk_count), *range(0, lead)]

    def first_segment(self, chunk: int) -> int:
        return chunk * self.segments_per_chunk

    def is_last(self, chunk: int) -> bool:
        return chunk == self.chunk_count - 1


def chunk_plan(*, duration_ms: int, sample_rate_hz: int, segment_seconds: int, chunk_seconds: int) -> ChunkPlan | None:
    """The plan of a track of this duration, or None when it is played from one run (short, or chunking off)."""
    if chunk_seconds <= 0 or duration_ms < CHUNK_MIN_RATIO * chunk_seconds * 1000:
        return None
    frames_per_segment = max(1, round(segment_seconds * sample_rate_hz / AAC_FRAME))
    segments_per_chunk = max(1, round(chunk_seconds / segment_seconds))
    # + 1: the priming packet is the rendition's first frame.
    total_frames = math.ceil(duration_ms * sample_rate_hz / (1000 * AAC_FRAME)) + 1
    chunks = max(1, math.ceil(total_frames / (frames_per_segment * segments_per_chunk) - LAST_CHUNK_MIN))
    if chunks < 2:
        return None
    return ChunkPlan(sample_rate_hz, frames_per_segment, segments_per_chunk, chunks)


def chunk_input_args(plan: ChunkPlan, chunk: int) -> list[str]:
    """`-ss`/`-t` before the input: from PREROLL_FRAMES before the chunk's span (a frame-grid point) to
    POSTROLL_FRAMES after it; the last chunk runs to the end of the audio."""
    if chunk == 0:
        start = 0
    else:
        start = (chunk * plan.chunk_frames - 1 - PREROLL_FRAMES) * AAC_FRAME
        start = max(0, start)
    args = ["-ss", _seconds(start, plan)] if start else []
    if not plan.is_last(chunk):
        end = ((chunk + 1) * plan.chunk_frames - 1 + POSTROLL_FRAMES) * AAC_FRAME
        args += ["-t", _seconds(end - start, plan)]
    return args


def chunk_packet_filter(plan: ChunkPlan, chunk: int) -> str:
    """The bitstream filters after each encoder: drop the packets outside the chunk's span, then shift the
    kept ones onto the track's timeline (the encoder's packet p, starting at `-ss`, is frame p of the
    chunk's input minus its priming; the rendition's frame j plays source samples [(j-1)*1024, j*1024))."""
    if chunk == 0:
        start, low = 0, -AAC_FRAME  # the priming packet is the rendition's first
    else:
        start = max(0, (chunk * plan.chunk_frames - 1 - PREROLL_FRAMES) * AAC_FRAME)
        low = (chunk * plan.chunk_frames - 1) * AAC_FRAME
    half = AAC_FRAME // 2  # compare half a frame off the grid: no float equality decides a packet
    drop = [f"lt(pts*tb\\,{_seconds(low - start - half, plan)})"]
    if not plan.is_last(chunk):
        high = ((chunk + 1) * plan.chunk_frames - 1) * AAC_FRAME
        drop.append(f"gte(pts*tb\\,{_seconds(high - start - half, plan)})")
    # The encoder's time base is 1/sample rate: the shift is in samples, exact.
    return f"noise=drop={'+'.join(drop)},setts=ts=TS+{start + AAC_FRAME}"


def chunk_hls_args(plan: ChunkPlan, chunk: int) -> list[str]:
    """Cut every `frames_per_segment` frames (a duration rounded down to the microsecond that the muxer
    parses: the cut is at the first packet at or past it, relative to the chunk's first packet), number the
    segments on the track's grid, keep the packets' own times in tfdt."""
    segment_us = plan.frames_per_segment * AAC_FRAME * 1_000_000 // plan.sample_rate_hz
    return [
        "-hls_time",
        f"{segment_us / 1_000_000:.6f}",
        "-start_number",
        str(plan.first_segment(chunk)),
        "-hls_segment_options",
        "movflags=+frag_discont",
    ]


def _seconds(samples: int, plan: ChunkPlan) -> str:
    return repr(samples / plan.sample_rate_hz)


def segment_name(index: int, extension: str) -> str:
    return f"seg{index:05d}.{extension}"


def live_playlist(
    plan: ChunkPlan,
    *,
    lead: int,
    present: set[int],
    last_durations: Sequence[float] | None,
    extension: str,
    init_name: str,
    whole: set[int] | None = None,
) -> str | None:
    """The EVENT playlist of a chunked rendition being made, from the segments on disk (each renamed into
    place when whole); None until the lead chunk has its first one.

    From the start of the lead chunk (where the first listener is) it lists the contiguous run of segments
    that exist and grows only at its end, as RFC 8216 asks of an EVENT playlist; before it, every segment of
    the track, those not made yet marked EXT-X-GAP (a player skips them; hls.js keeps a segment it saw as a
    gap for the rest of its session, so a seek back into a part finished later needs a reload there).
    `last_durations`: the last chunk's segment durations, once it is done: then the playlist ends with it
    and, when nothing is missing, EXT-X-ENDLIST. `whole`: segments of the last chunk known to hold a whole
    segment's frames (read from the file) while it runs: listed at once, not when the next one exists."""
    start = plan.first_segment(lead)
    last_first = plan.first_segment(plan.chunk_count - 1)
    durations: dict[int, float] = {}
    total = None
    if last_durations is not None:
        durations = {last_first + i: d for i, d in enumerate(last_durations)}
        total = last_first + len(last_durations)

    def listable(index: int) -> bool:
        if index not in present or (total is not None and index >= total):
            return False
        # The last chunk's final segment is as long as the audio is: listed once that chunk is done (a
        # segment followed by another, or holding a whole segment's frames, is not that one).
        return total is not None or index < last_first or index + 1 in present or index in (whole or ())

    end = start - 1
    while listable(end + 1):
        end += 1
    if end < start:
        return None
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max([round(plan.segment_s), *(round(d) for d in durations.values())])}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_name}"',
    ]
    for index in range(end + 1):
        lines.append(f"#EXTINF:{durations.get(index, plan.segment_s):.6f},")
        if index not in present:
            lines.append("#EXT-X-GAP")
        lines.append(segment_name(index, extension))
    complete = total is not None and end == total - 1 and all(i in present for i in range(total))
    if complete:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def fragment_frames(head: bytes) -> int | None:
    """The AAC frames of an fMP4 segment of one fragment (its `trun` sample count: one sample per frame),
    from the segment's first bytes; None when they do not hold it."""
    at = head.find(b"trun")
    return int.from_bytes(head[at + 8 : at + 12], "big") if at >= 4 and len(head) >= at + 12 else None


def missing_segments(plan: ChunkPlan, present: set[int], last_durations: Sequence[float]) -> list[int]:
    total = plan.first_segment(plan.chunk_count - 1) + len(last_durations)
    return [i for i in range(total) if i not in present]


def chunk_durations_check(plan: ChunkPlan, chunk: int, durations: Sequence[float]) -> str | None:
    """Why a finished chunk's own playlist does not match the plan, or None: every chunk but the last has
    exactly `segments_per_chunk` segments of `frames_per_segment` frames."""
    if plan.is_last(chunk):
        return None if durations else "the last chunk has no segment"
    if len(durations) != plan.segments_per_chunk:
        return f"chunk {chunk}: {len(durations)} segments, planned {plan.segments_per_chunk}"
    off = [d for d in durations if abs(d - plan.segment_s) > 0.5 * AAC_FRAME / plan.sample_rate_hz]
    return f"chunk {chunk}: segment durations {off[:3]} off the planned {plan.segment_s:.6f} s" if off else None


def chunk_span_ms(plan: ChunkPlan, chunk: int) -> tuple[int, int | None]:
    """Where the chunk plays in the track, for errors and logs (ms; None: to the end)."""
    per_ms = AAC_FRAME * 1000 / plan.sample_rate_hz
    start = round(chunk * plan.chunk_frames * per_ms)
    return start, None if plan.is_last(chunk) else round((chunk + 1) * plan.chunk_frames * per_ms)


def ms_text(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
