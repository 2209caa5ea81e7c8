"""The seamlessness check of chunked renditions (issue 18): the finished rendition decoded to PCM against the
decoded source around every join of two chunks. A join is bad when the residual (rendition - source) in the
10 ms on either side of it is over twice the residual of the same encode in the seconds after it (a gap, a
repeat or a click is a full-scale error there; two encoders' frames of the same audio on one grid are not),
or when the rendition is not aligned with the source right after it (audio dropped or repeated at the join).

Both are decoded once, streaming, keeping only the seconds around each join: a 2-hour book is checked in a
few MB."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import m3u8
import numpy as np
from django.conf import settings

SAMPLE_RATE = 44100
WINDOW = 441  # 10 ms
BAD_RATIO = 2.0
PRIMING = 1024  # the rendition starts with the AAC encoder's priming frame (no edit list in its segments)
BEFORE = 4096  # samples kept before a join
AFTER = 6 * SAMPLE_RATE  # and after it: the typical residual is measured over its last 5 s
SEARCH = 2048  # the alignment searched, samples either way
SPAN = 4096  # samples compared for the alignment


@dataclass(frozen=True)
class Join:
    at_s: float
    residual_near: float
    residual_typical: float
    lag_samples: int

    @property
    def bad(self) -> bool:
        return self.lag_samples != 0 or self.residual_near > BAD_RATIO * self.residual_typical


def rendition_file(folder: Path, out: Path) -> Path:
    """A profile's folder as one fMP4 file: init + segments in playlist order."""
    playlist = m3u8.load(str(folder / "index.m3u8"))
    with out.open("wb") as joined:
        joined.write((folder / "init.mp4").read_bytes())
        for segment in playlist.segments:
            joined.write((folder / segment.uri).read_bytes())
    return out


def pcm_spans(path: Path | str, spans: Sequence[tuple[int, int]], *, skip: int = 0) -> list[np.ndarray]:
    """Mono float PCM at 44.1 kHz (channels summed: a fault in one shows in the sum), decoded once, keeping
    only the sample spans asked for (counted after the first `skip` samples)."""
    command = [settings.FFMPEG_BINARY, "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    kept = [np.zeros(end - start, dtype=np.float64) for start, end in spans]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    position = -skip
    while block := process.stdout.read(1 << 20):
        samples = np.frombuffer(block[: len(block) // 4 * 4], dtype="<f4")
        for (start, end), out in zip(spans, kept, strict=True):
            low, high = max(start, position), min(end, position + len(samples))
            if low < high:
                out[low - start : high - start] = samples[low - position : high - position]
        position += len(samples)
    assert process.wait() == 0, f"ffmpeg could not decode {path}"
    return kept


def joins_check(rendition: Path, source: Path, joins_s: Sequence[float], *, offset: int = 0) -> list[Join]:
    """Each join (seconds of the source's timeline) of the rendition file checked against the source
    (`offset`: samples of the rendition skipped besides its priming, for the check's own negative test)."""
    ats = [round(at_s * SAMPLE_RATE) for at_s in joins_s]
    spans = [(at - BEFORE - SEARCH, at + AFTER + SEARCH) for at in ats]
    decoded = pcm_spans(rendition, spans, skip=PRIMING + offset)
    reference = pcm_spans(source, spans)
    found = []
    for at_s, ours, theirs in zip(joins_s, decoded, reference, strict=True):
        origin = BEFORE + SEARCH  # the join's index in the spans
        residual = ours - theirs
        near = residual[origin - WINDOW : origin + WINDOW]
        later = residual[origin + SAMPLE_RATE : origin + AFTER]
        blocks = later[: len(later) // (2 * WINDOW) * 2 * WINDOW].reshape(-1, 2 * WINDOW)
        typical = float(np.sqrt(np.median(np.mean(blocks**2, axis=1))))
        target = theirs[origin : origin + SPAN]
        errors = [
            np.sum((ours[origin + lag : origin + lag + SPAN] - target) ** 2) for lag in range(-SEARCH, SEARCH + 1)
        ]
        lag = int(np.argmin(errors)) - SEARCH
        found.append(Join(at_s, float(np.sqrt(np.mean(near**2))), typical, lag))
    return found
