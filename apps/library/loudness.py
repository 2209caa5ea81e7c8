"""Loudness arithmetic (pure: no Django, no I/O): BS.1770 gating over a block histogram, gains to a reference
level capped by the true peak, and the REPLAYGAIN_* / R128_* tags read as loudness until a measurement exists.

The measurement itself (ffmpeg's ebur128 in the transcode's decode) is apps.streaming.analysis; it hands over
the 400 ms block loudnesses as a histogram of 0.1 LU bins, which is also what an album's loudness is gated over:
the album's histogram is the sum of its tracks', so the album is gated as one programme (BS.1770's absolute
-70 LUFS gate, then the relative gate 10 LU under the gated mean), not averaged from track values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = 10.0
# Histogram bins: block loudness in tenths of a LU (int(round(lufs * 10))) as stored for albums, hundredths
# while a track is measured. A bin's energy is taken at its centre: a constant signal is off by at most half a
# bin (0.05 LU for an album, 0.005 LU for a track).
BIN_LU = 0.1
FINE_BIN_LU = 0.01
# The true peak a gain may raise a track to (EBU R128 s1's -1 dBTP for distribution).
PEAK_CEILING_DBTP = -1.0
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2.0's reference, what REPLAYGAIN_*_GAIN tags are relative to
R128_REFERENCE_LUFS = -23.0  # Opus R128_*_GAIN tags: Q7.8 dB relative to EBU R128's -23 LUFS

Histogram = dict[int, int]


def block_bin(lufs: float, bin_lu: float = BIN_LU) -> int:
    return int(round(lufs / bin_lu))


def histogram_coarsen(fine: Mapping[int, int]) -> Histogram:
    """A FINE_BIN_LU histogram in BIN_LU bins (what is stored: at most ~750 bins a track)."""
    coarse: Histogram = {}
    for key, count in fine.items():
        bin_ = block_bin(key * FINE_BIN_LU)
        coarse[bin_] = coarse.get(bin_, 0) + count
    return coarse


def _energy(lufs: float) -> float:
    return 10 ** ((lufs + 0.691) / 10)


def _lufs(energy: float) -> float:
    return -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf


def gated_loudness(histogram: Mapping[int, int], bin_lu: float = BIN_LU) -> float:
    """Integrated loudness (LUFS) of blocks binned by block_bin: -inf when no block passes the absolute gate
    (digital silence, or nothing but hiss under -70 LUFS)."""
    gated = [(key * bin_lu, count) for key, count in histogram.items() if key * bin_lu > ABSOLUTE_GATE_LUFS and count]
    blocks = sum(count for _, count in gated)
    if not blocks:
        return -math.inf
    relative_gate = _lufs(sum(_energy(lufs) * count for lufs, count in gated) / blocks) - RELATIVE_GATE_LU
    kept = [(lufs, count) for lufs, count in gated if lufs > relative_gate]
    return _lufs(sum(_energy(lufs) * count for lufs, count in kept) / sum(count for _, count in kept))


def histogram_merge(histograms: Iterable[Mapping[int | str, int]]) -> Histogram:
    """The sum of several histograms (JSON keys are strings: both are taken)."""
    total: Histogram = {}
    for histogram in histograms:
        for key, count in histogram.items():
            total[int(key)] = total.get(int(key), 0) + int(count)
    return total


def gain_db(loudness_lufs: float | None, true_peak_dbtp: float | None, *, reference_lufs: float) -> float | None:
    """The gain that brings the loudness to the reference, lowered so that the true peak stays at or under
    -1 dBTP; None when the loudness is unknown. Digital silence (-inf) gets 0 dB: nothing to bring up."""
    if loudness_lufs is None:
        return None
    if math.isinf(loudness_lufs):
        return 0.0
    gain = reference_lufs - loudness_lufs
    if true_peak_dbtp is not None and not math.isinf(true_peak_dbtp):
        gain = min(gain, PEAK_CEILING_DBTP - true_peak_dbtp)
    return round(gain, 2)


@dataclass(frozen=True)
class TaggedLoudness:
    """Loudness as tagged (ReplayGain / R128 gains turned back into loudness), None where not tagged."""

    track_lufs: float | None = None
    track_peak_dbtp: float | None = None
    album_lufs: float | None = None
    album_peak_dbtp: float | None = None


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _number(tags: Mapping[str, list[str]], key: str) -> float | None:
    for value in tags.get(key) or []:
        match = _NUMBER.search(value)
        if match:
            number = float(match[0])
            if math.isfinite(number):
                return number
    return None


def _peak_db(linear: float | None) -> float | None:
    if linear is None or linear < 0:
        return None
    return -math.inf if linear == 0 else round(20 * math.log10(linear), 2)


def tagged_loudness(tags: Mapping[str, list[str]]) -> TaggedLoudness:
    """REPLAYGAIN_TRACK_GAIN "-6.50 dB" (ReplayGain 2.0: relative to -18 LUFS), REPLAYGAIN_*_PEAK (linear
    sample peak), R128_TRACK_GAIN / R128_ALBUM_GAIN (Opus: integer Q7.8 relative to -23 LUFS), as the scanner
    stores tags (lower-case keys). Gains beyond +-60 dB are nonsense and ignored."""

    def loudness(replaygain: str, r128: str) -> float | None:
        gain = _number(tags, replaygain)
        if gain is not None and abs(gain) <= 60:
            return round(REPLAYGAIN_REFERENCE_LUFS - gain, 2)
        q78 = _number(tags, r128)
        if q78 is not None and abs(q78 / 256) <= 60:
            return round(R128_REFERENCE_LUFS - q78 / 256, 2)
        return None

    return TaggedLoudness(
        track_lufs=loudness("replaygain_track_gain", "r128_track_gain"),
        track_peak_dbtp=_peak_db(_number(tags, "replaygain_track_peak")),
        album_lufs=loudness("replaygain_album_gain", "r128_album_gain"),
        album_peak_dbtp=_peak_db(_number(tags, "replaygain_album_peak")),
    )
