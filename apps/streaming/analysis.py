"""The analysis branch of the transcode's decode: EBU R128 loudness, true peak and silences, measured by ffmpeg
on the PCM it already decodes for the renditions (no second decode), and the parser of what it writes.

The branch (`analysis_filter`) resamples to 48 kHz (ebur128's rate), cuts the audio into 100 ms frames and
runs `ebur128=peak=true:metadata=1`, whose per-frame metadata `ametadata` prints to a file: lavfi.r128.M, the
momentary loudness of the 400 ms ending with that frame, is exactly BS.1770's gating block (400 ms every
100 ms); true_peak is the 4x-oversampled peak; LRA is ffmpeg's loudness range. The parser reads the file line
by line (an 8-hour book: 288 000 frames, ~60 MB of text, read in constant memory) into:
- a histogram of block loudness in 0.1 LU bins (apps.library.loudness: the track's integrated loudness, and
  its album's, gated over all the album's blocks);
- for spoken word, one float per 100 ms (4 bytes: 1.1 MB for 8 hours) from which the silences are found once
  the integrated loudness is known: the threshold is relative to it (SILENCE_THRESHOLD_LU under it), which a
  `silencedetect` in the same pass could not be, since it needs its threshold before the first sample.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from apps.library.loudness import ABSOLUTE_GATE_LUFS, FINE_BIN_LU, Histogram, gated_loudness, histogram_coarsen

FRAME_MS = 100  # one gating-block step
BLOCK_MS = 400  # one gating block
SAMPLE_RATE_HZ = 48_000


def _filter_escape(value: str) -> str:
    """A value for a filter option inside -filter_complex: escaped for the option parser (\\ ' :), then for
    the graph parser (\\ ' [ ] , ;)."""
    for special in ("\\", "'", ":"):
        value = value.replace(special, "\\" + special)
    for special in ("\\", "'", "[", "]", ",", ";"):
        value = value.replace(special, "\\" + special)
    return value


def analysis_filter(*, source_label: str, metadata_path: str, output_label: str = "") -> str:
    """The filtergraph chain to add to the transcode's -filter_complex, reading the decoded audio from
    `[source_label]` (one output of the asplit that feeds the renditions) and ending in a sink; or in
    `[output_label]` when the graph has no other output (ffmpeg refuses a graph of sinks only): the caller then
    maps it to `-f null -`."""
    end = f"[{output_label}]" if output_label else ",anullsink"
    return (
        f"[{source_label}]aresample={SAMPLE_RATE_HZ},asetnsamples=n={SAMPLE_RATE_HZ * FRAME_MS // 1000}:p=0,"
        f"ebur128=peak=true:metadata=1,ametadata=mode=print:file={_filter_escape(metadata_path)}{end}"
    )


@dataclass
class Silence:
    start_ms: int
    end_ms: int


@dataclass
class Measurement:
    integrated_lufs: float  # -inf: no block above -70 LUFS (digital silence)
    range_lu: float
    true_peak_dbtp: float  # -inf: all samples zero
    histogram: Histogram  # BIN_LU bins, as stored
    duration_ms: int
    silences: list[Silence] = field(default_factory=list)

    def silences_flat(self) -> list[int]:
        return [edge for silence in self.silences for edge in (silence.start_ms, silence.end_ms)]


def parse_metadata(
    lines: Iterable[str], *, find_silences: bool = False, silence_threshold_lu: float = 25.0, silence_min_ms: int = 1000
) -> Measurement:
    """What ffmpeg's analysis branch measured, from the lines `ametadata=mode=print` wrote."""
    histogram: Histogram = {}
    momentary = array("f")
    peak_linear = 0.0
    range_lu = 0.0
    frames = 0
    # Two million lines for an 8-hour book: prefix tests only, and a float parsed only for the three keys used.
    for line in lines:
        if line.startswith("lavfi.r128.M="):
            lufs = float(line[13:])
            if lufs > ABSOLUTE_GATE_LUFS:
                bin_ = round(lufs * 100)  # block_bin(lufs, FINE_BIN_LU), inlined
                histogram[bin_] = histogram.get(bin_, 0) + 1
            elif lufs != lufs:  # NaN: ffmpeg's filter state a hair under zero energy after a hard stop
                lufs = -math.inf
            if find_silences:
                momentary.append(lufs)
        elif line.startswith("frame:"):
            frames += 1
        elif line.startswith("lavfi.r128.true_peak="):
            value = float(line[21:])
            if value > peak_linear:
                peak_linear = value
        elif line.startswith("lavfi.r128.LRA="):
            range_lu = float(line[15:])  # ffmpeg's running value: the last frame's is the whole track's
    integrated = gated_loudness(histogram, FINE_BIN_LU)
    measurement = Measurement(
        integrated_lufs=integrated,
        range_lu=range_lu,
        true_peak_dbtp=20 * math.log10(peak_linear) if peak_linear > 0 else -math.inf,
        histogram=histogram_coarsen(histogram),
        duration_ms=frames * FRAME_MS,
    )
    if find_silences:
        measurement.silences = find_quiet(
            momentary, integrated_lufs=integrated, threshold_lu=silence_threshold_lu, min_ms=silence_min_ms
        )
    return measurement


def find_quiet(
    momentary: Iterable[float], *, integrated_lufs: float, threshold_lu: float, min_ms: int
) -> list[Silence]:
    """Spans at least `min_ms` long where every 400 ms block is quieter than `threshold_lu` under the integrated
    loudness (or under the -70 LUFS gate). Frame k's block covers [(k-3)*100, (k+1)*100) ms, so a run of quiet
    blocks k0..k1 is quiet from (k0-3)*100 to (k1+1)*100 ms. The first three frames' blocks are incomplete
    (ffmpeg reports them as empty) and count as quiet only if frame 3's block is."""
    threshold = max(integrated_lufs - threshold_lu, ABSOLUTE_GATE_LUFS)
    silences: list[Silence] = []
    run_start: int | None = None
    index = -1
    for index, lufs in enumerate(momentary):
        quiet = lufs < threshold
        if index < BLOCK_MS // FRAME_MS - 1:
            continue  # an incomplete block: decided by the first whole one
        if quiet and run_start is None:
            run_start = index
        elif not quiet and run_start is not None:
            _close(silences, run_start, index - 1, min_ms)
            run_start = None
    if run_start is not None:
        _close(silences, run_start, index, min_ms)
    return silences


def _close(silences: list[Silence], first: int, last: int, min_ms: int) -> None:
    blocks_per_window = BLOCK_MS // FRAME_MS
    start_ms = max(first - (blocks_per_window - 1), 0) * FRAME_MS
    end_ms = (last + 1) * FRAME_MS
    if end_ms - start_ms >= min_ms:
        silences.append(Silence(start_ms, end_ms))
