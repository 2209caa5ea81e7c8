"""Storing what the transcode's analysis branch measured of a track, and its album's loudness from it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from django.db import transaction
from django.db.models import Max

from apps.library.loudness import gated_loudness, histogram_merge
from apps.library.models import Album, Track, TrackLoudness


def track_loudness_current(*, track: Track) -> bool:
    """Whether the track's audio as it is now (its source fingerprint) was measured already: a rescan or a
    new ladder of unchanged audio does not measure it again."""
    return TrackLoudness.objects.filter(track_id=track.pk, source_fingerprint=track.source_fingerprint).exists()


def track_loudness_record(
    *,
    track_id: int,
    source_fingerprint: str,
    integrated_lufs: float,
    range_lu: float,
    true_peak_dbtp: float,
    histogram: Mapping[int, int],
    silences_ms: Sequence[int],
) -> bool:
    """Store a measurement of the audio with `source_fingerprint` (False, nothing stored, when the track has
    changed since: its next transcode measures the new audio), and gate the album's loudness again over all
    the blocks of its measured tracks."""
    with transaction.atomic():
        track = (
            Track.objects.select_for_update()
            .filter(pk=track_id, source_fingerprint=source_fingerprint)
            .only("id", "album_id")
            .first()
        )
        if track is None:
            return False
        TrackLoudness.objects.bulk_create(
            [
                TrackLoudness(
                    track_id=track_id,
                    source_fingerprint=source_fingerprint,
                    integrated_lufs=integrated_lufs,
                    range_lu=range_lu,
                    true_peak_dbtp=true_peak_dbtp,
                    block_histogram={str(key): count for key, count in sorted(histogram.items())},
                    silences_ms=list(silences_ms),
                )
            ],
            update_conflicts=True,
            unique_fields=["track"],
            update_fields=[
                "source_fingerprint",
                "integrated_lufs",
                "range_lu",
                "true_peak_dbtp",
                "block_histogram",
                "silences_ms",
                "measured_at",
            ],
        )
        if track.album_id is not None:
            album_loudness_refresh(album_id=track.album_id)
    return True


def album_loudness_refresh(*, album_id: int) -> None:
    """The album's loudness gated over all blocks of its listed, measured tracks (BS.1770 over the album as
    one programme, not an average of track values), and its highest true peak. Locks the album row."""
    Album.objects.select_for_update().filter(pk=album_id).only("id").first()
    measured = TrackLoudness.objects.filter(track__album_id=album_id, track__missing=False)
    histograms = measured.values_list("block_histogram", flat=True)
    loudness = gated_loudness(histogram_merge(histograms)) if measured.exists() else None
    peak = measured.aggregate(peak=Max("true_peak_dbtp"))["peak"]
    Album.objects.filter(pk=album_id).update(
        loudness_lufs=loudness, true_peak_dbtp=None if peak is None or math.isnan(peak) else peak
    )
