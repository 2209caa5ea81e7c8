"""The analysis branch (issue 21) against independent implementations: pyloudnorm's BS.1770 integrated loudness
on the same decoded PCM (within 0.3 LU) and a 4x-oversampled true peak (scipy's polyphase resampler, within
0.3 dB), on generated signals: sines at known levels, pink noise, speech-like bursts, a clipped square wave,
mono and 5.1, digital silence. Silences: tone bursts with gaps, the long gaps found and nothing else. An 8-hour
book's analysis output parsed in bounded memory. No database."""

from __future__ import annotations

import itertools
import math
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from django.conf import settings
from scipy.signal import resample_poly

from apps.library.loudness import gain_db, gated_loudness, histogram_merge, tagged_loudness
from apps.streaming.analysis import analysis_filter, parse_metadata

RATE = 48_000


def _measure(tmp_path: Path, pcm: np.ndarray, layout: str, *, rate: int = RATE, silences: bool = False):
    """Write `pcm` as a float WAV, run the branch as the transcoder adds it (beside an encoded output), and
    decode the same file to PCM for the oracles."""
    source = tmp_path / f"{layout}.wav"
    subprocess.run(
        [settings.FFMPEG_BINARY, "-v", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ch_layout", layout]
        + ["-i", "-", "-c:a", "pcm_f32le", str(source)],
        input=pcm.astype("<f4").tobytes(),
        check=True,
    )
    metadata = tmp_path / "odd: name, [x]; 'q'.txt"  # escaped for the filtergraph
    graph = "[0:a:0]asplit=2[o0][analysis];" + analysis_filter(source_label="analysis", metadata_path=str(metadata))
    subprocess.run(
        [settings.FFMPEG_BINARY, "-v", "error", "-i", str(source), "-filter_complex", graph]
        + ["-map", "[o0]", "-c:a", "aac", "-b:a", "64k", "-f", "null", "-"],
        check=True,
    )
    with metadata.open() as lines:
        measured = parse_metadata(lines, find_silences=silences)
    decoded = subprocess.run(
        [settings.FFMPEG_BINARY, "-v", "error", "-i", str(source), "-f", "f32le", "-"], capture_output=True, check=True
    ).stdout
    return measured, np.frombuffer(decoded, "<f4").reshape(-1, pcm.shape[1]).astype(np.float64)


def _oracle(pcm: np.ndarray, rate: int = RATE, channels: list[int] | None = None) -> tuple[float, float]:
    weighted = pcm if channels is None else pcm[:, channels]
    loudness = pyloudnorm.Meter(rate).integrated_loudness(weighted if weighted.shape[1] > 1 else weighted[:, 0])
    peak = float(np.max(np.abs(resample_poly(pcm, 4, 1, axis=0))))
    return loudness, 20 * math.log10(peak)


def _seconds(count: float, rate: int = RATE) -> np.ndarray:
    return np.arange(int(count * rate)) / rate


def _pink(rng: np.random.Generator, samples: int, rms: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples, 1 / RATE)
    spectrum[1:] /= np.sqrt(frequencies[1:])
    spectrum[0] = 0
    pink = np.fft.irfft(spectrum, samples)
    return rms * pink / np.std(pink)


def _bursts(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Speech-like: 0.3-0.8 s tone bursts at random pitch and level, 0.3 s pauses (between words) and every
    third a 2 s gap (a pause to skip). Returns the signal and the 2 s gaps."""
    signal = np.zeros(30 * RATE)
    position, index, gaps = 0, 0, []
    while position < len(signal) - 2 * RATE:
        length = int(RATE * (0.3 + 0.5 * rng.random()))
        t = np.arange(length) / RATE
        envelope = np.hanning(length) ** 0.2
        signal[position : position + length] = (
            (0.05 + 0.2 * rng.random()) * envelope * np.sin(2 * np.pi * (200 + 300 * rng.random()) * t)
        )
        position += length
        gap = int(RATE * (2.0 if index % 3 == 0 else 0.3))
        if gap > RATE:
            gaps.append((position / RATE, (position + gap) / RATE))
        position += gap
        index += 1
    return signal, gaps


@pytest.mark.slow
def test_loudness_and_true_peak_agree_with_pyloudnorm_and_an_oversampled_peak(tmp_path) -> None:
    rng = np.random.default_rng(21)
    t = _seconds(10)
    sine = 0.1 * np.sin(2 * np.pi * 997 * t)  # -20 dBFS peak
    quiet_sine = 0.01 * np.sin(2 * np.pi * 440 * t)
    pink = _pink(rng, 20 * RATE, 0.05)
    bursts, _ = _bursts(rng)
    square = np.sign(np.sin(2 * np.pi * 1000 * t))  # full scale: overshoots 0 dBFS between samples
    surround = np.stack(
        [
            0.1 * np.sin(2 * np.pi * 300 * t),
            0.1 * np.sin(2 * np.pi * 500 * t),
            0.1 * np.sin(2 * np.pi * 700 * t),
            0.5 * np.sin(2 * np.pi * 50 * t),  # LFE: not part of BS.1770's sum
            0.1 * rng.standard_normal(len(t)),
            0.05 * rng.standard_normal(len(t)),
        ],
        axis=1,
    )
    cases = [
        ("stereo sine -20 dBFS", np.stack([sine, sine], 1), "stereo", None, -20.04),
        ("mono sine", sine[:, None], "mono", None, -23.05),
        ("quiet sine", np.stack([quiet_sine, quiet_sine], 1), "stereo", None, None),
        ("pink noise", np.stack([pink, 0.8 * pink], 1), "stereo", None, None),
        ("speech-like bursts", bursts[:, None], "mono", None, None),
        ("clipped square", np.stack([square, square], 1), "stereo", None, None),
        ("5.1", surround, "5.1", [0, 1, 2, 4, 5], None),
    ]
    for name, pcm, layout, channels, expected in cases:
        measured, decoded = _measure(tmp_path, pcm, layout)
        loudness, peak = _oracle(decoded, channels=channels)
        assert abs(measured.integrated_lufs - loudness) <= 0.3, (name, measured.integrated_lufs, loudness)
        assert abs(measured.true_peak_dbtp - peak) <= 0.3, (name, measured.true_peak_dbtp, peak)
        if expected is not None:  # the oracle itself, against the textbook value (997 Hz: K-weighting ~ +0.7 dB)
            assert round(loudness, 2) == expected
        if name == "clipped square":
            assert measured.true_peak_dbtp > 1.5  # above 0 dBTP, as the oversampled reference says
            gain = gain_db(measured.integrated_lufs, measured.true_peak_dbtp, reference_lufs=-18)
            assert gain == round(-18 - measured.integrated_lufs, 2)  # about -21.8 dB: down to the reference
            assert measured.true_peak_dbtp + gain <= -1
        if name == "stereo sine -20 dBFS":
            assert measured.duration_ms == 10_000
            assert gain_db(measured.integrated_lufs, measured.true_peak_dbtp, reference_lufs=-18) == pytest.approx(
                2.0, abs=0.05
            )


@pytest.mark.slow
def test_digital_silence_and_silences_between_bursts(tmp_path) -> None:
    silent, _ = _measure(tmp_path, np.zeros((5 * RATE, 2)), "stereo", silences=True)
    assert silent.integrated_lufs == -math.inf
    assert silent.true_peak_dbtp == -math.inf
    assert silent.histogram == {}
    assert [(s.start_ms, s.end_ms) for s in silent.silences] == [(0, 5000)]
    assert gain_db(silent.integrated_lufs, silent.true_peak_dbtp, reference_lufs=-18) == 0.0

    bursts, gaps = _bursts(np.random.default_rng(7))
    measured, decoded = _measure(tmp_path, bursts[:, None], "mono", silences=True)
    found = [(s.start_ms / 1000, s.end_ms / 1000) for s in measured.silences]
    tail = (gaps[-1][1], 30.0)  # the signal ends in silence after its last gap
    assert len(found) == len(gaps) + (tail[1] - tail[0] >= 1)
    for (start, end), (gap_start, gap_end) in zip(found, gaps, strict=False):
        # Every 2 s gap, to within one 100 ms frame at each end; no 0.3 s pause between words.
        assert abs(start - gap_start) <= 0.1 and abs(end - gap_end) <= 0.1, (start, end, gap_start, gap_end)


def test_album_loudness_is_gated_over_all_blocks_not_averaged() -> None:
    loud = {-100: 600}  # 60 s of blocks at -10 LUFS
    quiet = {-400: 600}  # 60 s at -40 LUFS: 30 LU under the loud one
    album = gated_loudness(histogram_merge([loud, quiet]))
    # Gated as one programme: the quiet half falls under the relative gate (-13 LUFS - 10 LU) and drops out.
    assert album == pytest.approx(-10.0, abs=0.01)
    assert (gated_loudness(loud) + gated_loudness(quiet)) / 2 == pytest.approx(-25.0, abs=0.01)  # not this
    assert histogram_merge([{"-100": 2}, {-100: 3, -90: 1}]) == {-100: 5, -90: 1}


def test_tags_read_as_loudness_until_measured() -> None:
    tagged = tagged_loudness(
        {
            "replaygain_track_gain": ["-6.50 dB"],
            "replaygain_track_peak": ["0.988553"],
            "replaygain_album_gain": ["+1.20 dB"],
        }
    )
    assert (tagged.track_lufs, tagged.track_peak_dbtp, tagged.album_lufs, tagged.album_peak_dbtp) == (
        -11.5,
        -0.1,
        -19.2,
        None,
    )
    opus = tagged_loudness({"r128_track_gain": ["-1280"], "r128_album_gain": ["garbage"]})
    assert (opus.track_lufs, opus.album_lufs) == (-18.0, None)  # -23 LUFS - (-1280 / 256) dB
    assert tagged_loudness({"replaygain_track_gain": ["-900 dB"]}).track_lufs is None
    # Turned down by 6.5 dB to -18 LUFS: its peak ends at -6.6 dBTP, under the ceiling.
    assert gain_db(-11.5, -0.1, reference_lufs=-18) == -6.5
    assert gain_db(-30.0, -3.0, reference_lufs=-18) == 2.0  # +12 wanted, capped at -1 dBTP
    assert gain_db(None, None, reference_lufs=-18) is None


def test_an_eight_hour_book_is_parsed_in_bounded_memory() -> None:
    """288 000 frames (8 h of 100 ms), as ffmpeg prints them, streamed through the parser: the memory it holds
    is the histogram and 4 bytes a frame for the silences, not the text."""
    frames = 8 * 3600 * 10

    cycle: list[str] = []  # 10 s as ffmpeg prints it: 8 s of speech, 2 s of silence
    for frame in range(100):
        cycle.append(f"frame:{frame}    pts:{frame * 4800}  pts_time:{frame / 10}\n")
        cycle.append(f"lavfi.r128.M={-20.0 - (frame % 7) * 0.5 if frame < 80 else -90.0:.3f}\n")
        cycle += ["lavfi.r128.S=-21.000\n", "lavfi.r128.I=-21.000\n", "lavfi.r128.LRA=3.000\n"]
        cycle += ["lavfi.r128.true_peaks_ch0=0.500\n", "lavfi.r128.true_peak=0.500\n"]
    lines = itertools.chain.from_iterable(itertools.repeat(cycle, frames // 100))

    tracemalloc.start()
    measured = parse_metadata(lines, find_silences=True)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert measured.duration_ms == 8 * 3600 * 1000
    assert peak_bytes < 4 * 1024 * 1024, peak_bytes  # 1.15 MB of floats + the silences found
    assert len(measured.silences) == frames // 100  # one 2 s pause every 10 s
    assert measured.true_peak_dbtp == pytest.approx(-6.02, abs=0.01)
    assert measured.range_lu == 3.0
