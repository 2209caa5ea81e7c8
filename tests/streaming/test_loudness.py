"""Loudness and silences measured in the transcode's own ffmpeg run (issue 21), stored, gated per album, served
by GET /api/v1/tracks/<id>/loudness; tags used until then; unchanged audio never measured twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from mutagen.flac import FLAC
from rest_framework.test import APIClient

from apps.library.loudness import gain_db, gated_loudness, histogram_merge
from apps.library.models import LibraryKind, Track, TrackLoudness
from apps.streaming.models import Rendition
from apps.streaming.storage import RenditionStorage
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import ready, scan

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def tone(path: Path, *, seconds: float, volume_db: float, tags: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [settings.FFMPEG_BINARY, "-v", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"sine=frequency=997:sample_rate=48000:duration={seconds},volume={volume_db}dB", "-ac", "2"]
    for name, value in tags.items():
        command += ["-metadata", f"{name}={value}"]
    subprocess.run([*command, "-c:a", "flac", str(path)], check=True)
    return path


@pytest.fixture(autouse=True)
def _one_rung(settings) -> None:
    """One encoded rung is enough for the analysis branch beside it (and a third of the time)."""
    settings.STREAMING_PROFILES = ["aac-64"]


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


def loudness(api: APIClient, track: Track) -> dict:
    response = api.get(f"/api/v1/tracks/{track.pk}/loudness")
    assert response.status_code == 200, response.content
    return response.json()


def test_measured_in_the_transcode_album_gated_tags_until_then_never_twice(media, api) -> None:
    album = {"album": "Levels", "album_artist": "Tester"}
    # ffmpeg's sine is at -18 dBFS, and -3 dB in each channel once made stereo: "loud" peaks at -9 dBFS and is
    # -9 LUFS (997 Hz), "quiet" 30 dB under it.
    loud = tone(media / "loud.flac", seconds=6, volume_db=12, tags={"title": "loud", **album})
    tone(media / "quiet.flac", seconds=6, volume_db=-18, tags={"title": "quiet", **album})
    tags = FLAC(loud)
    tags["REPLAYGAIN_TRACK_GAIN"] = "-4.00 dB"
    tags["REPLAYGAIN_TRACK_PEAK"] = "0.5"
    tags.save()
    library = LibraryFactory(root=media, kind=LibraryKind.MUSIC)
    scan(library)
    loud_track, quiet_track = Track.objects.get(title="loud"), Track.objects.get(title="quiet")

    tagged = loudness(api, loud_track)
    assert (tagged["origin"], tagged["integrated_lufs"], tagged["true_peak_dbtp"]) == ("tags", -14.0, -6.02)
    assert (tagged["track_gain_db"], tagged["album_gain_db"], tagged["silences"]) == (-4.0, None, [])
    assert loudness(api, quiet_track)["origin"] == "none"
    assert loudness(api, quiet_track)["track_gain_db"] is None

    ready(loud_track)
    ready(quiet_track)
    first, second = TrackLoudness.objects.get(track=loud_track), TrackLoudness.objects.get(track=quiet_track)
    assert first.integrated_lufs == pytest.approx(-9.0, abs=0.3)
    assert second.integrated_lufs == pytest.approx(-39.0, abs=0.3)
    assert first.true_peak_dbtp == pytest.approx(-9.0, abs=0.3)
    measured = loudness(api, loud_track)
    assert measured["origin"] == "measured"
    assert measured["integrated_lufs"] == round(first.integrated_lufs, 2)
    # -9 dB to the -18 LUFS reference (the peak is no limit when turning down).
    assert measured["track_gain_db"] == gain_db(first.integrated_lufs, first.true_peak_dbtp, reference_lufs=-18)
    assert measured["track_gain_db"] == pytest.approx(-9.0, abs=0.3)
    quiet = loudness(api, quiet_track)
    # +21 dB to the reference: its true peak goes from -39 to -18 dBTP, well under the -1 dBTP cap.
    assert quiet["track_gain_db"] == pytest.approx(21.0, abs=0.3)
    # The album, gated as one programme: the quiet half is under the relative gate, so the album is as loud as
    # the loud track (an average of the two would say -24 LUFS).
    expected_album = gated_loudness(histogram_merge([first.block_histogram, second.block_histogram]))
    assert quiet["album_lufs"] == round(expected_album, 2)
    assert quiet["album_lufs"] == pytest.approx(first.integrated_lufs, abs=0.1)
    assert quiet["album_gain_db"] == measured["album_gain_db"] == pytest.approx(-9.0, abs=0.3)

    # A new ladder (renditions rebuilt) of unchanged audio: not measured again.
    TrackLoudness.objects.filter(track=loud_track).update(integrated_lufs=-99.0)
    keys = set(Rendition.objects.filter(track=loud_track).values_list("rendition_key", flat=True))
    Rendition.objects.filter(track=loud_track).delete()
    for key in keys:
        shutil.rmtree(RenditionStorage.from_settings().folder(loud_track.pk, key), ignore_errors=True)
    ready(loud_track)
    assert TrackLoudness.objects.get(track=loud_track).integrated_lufs == -99.0
    # Changed audio (a new fingerprint): measured again.
    tone(loud, seconds=6, volume_db=0, tags={"title": "loud", **album})
    touch_later(loud)
    scan(library)
    loud_track.refresh_from_db()
    ready(loud_track)
    assert TrackLoudness.objects.get(track=loud_track).integrated_lufs == pytest.approx(-21.0, abs=0.3)


def test_silences_of_spoken_word_and_digital_silence(media, api) -> None:
    """Tone bursts with gaps (1.5 s on, 0.3 s pause, 1.5 s on, 2 s gap; three times): the 2 s gaps are found
    and nothing else (SILENCE_MIN_MS 1000, SILENCE_THRESHOLD_LU 25, the defaults)."""
    rate = 48_000
    t = np.arange(int(5.3 * rate)) / rate
    period = 0.2 * np.sin(2 * np.pi * 440 * t) * (((t < 1.5) | ((t >= 1.8) & (t < 3.3))).astype(float))
    pcm = np.tile(period, 3)
    episode = media / "Show" / "episode.wav"
    episode.parent.mkdir(parents=True)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-v", "error", "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "-"]
        + ["-metadata", "title=episode", "-c:a", "pcm_s16le", str(episode)],
        input=pcm.astype("<f4").tobytes(),
        check=True,
    )
    subprocess.run(
        [settings.FFMPEG_BINARY, "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "4"]
        + ["-metadata", "title=nothing", "-c:a", "pcm_s16le", str(media / "Show" / "nothing.wav")],
        check=True,
    )
    library = LibraryFactory(root=media, kind=LibraryKind.PODCAST)
    scan(library)
    track = Track.objects.get(title="episode")
    ready(track)
    found = loudness(api, track)["silences"]
    expected = [[3300, 5300], [8600, 10600], [13900, 15900]]
    assert len(found) == len(expected), found
    for (start, end), (want_start, want_end) in zip(found, expected, strict=True):
        assert abs(start - want_start) <= 100 and abs(end - want_end) <= 100, found

    nothing = Track.objects.get(title="nothing")
    ready(nothing)
    assert TrackLoudness.objects.get(track=nothing).integrated_lufs == float("-inf")
    silent = loudness(api, nothing)
    assert (silent["integrated_lufs"], silent["digital_silence"], silent["track_gain_db"]) == (None, True, 0.0)
    assert silent["true_peak_dbtp"] is None
    assert silent["silences"] == [[0, 4000]]

    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert stranger.get(f"/api/v1/tracks/{track.pk}/loudness").status_code == 404


def test_a_copied_rendition_is_measured_by_a_decode_alone(media, api, settings) -> None:
    """A single-file AAC gets only aac-copy (no encode): the run decodes for the analysis branch alone."""
    settings.STREAMING_LADDER = "fitted"
    make_audio(media / "book.m4b", seconds=8, tags={"title": "book"})
    scan(LibraryFactory(root=media))
    track = Track.objects.get(title="book")
    assert [row.profile for row in ready(track)] == ["aac-copy"]
    # tests/audio.py's tone: 440 Hz at -18 dBFS peak in mono: mean square -21.0 dB, -0.69 dB of BS.1770's
    # offset that K-weighting does not make up at 440 Hz (it does at 997 Hz).
    assert loudness(api, track)["integrated_lufs"] == pytest.approx(-21.7, abs=0.3)
