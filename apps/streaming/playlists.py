"""The master playlist, built per request (its URIs are signed and expire) with the m3u8 library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import m3u8

from apps.streaming.models import Rendition
from apps.streaming.storage import LIVE_PLAYLIST_NAME, PLAYLIST_NAME, RenditionStorage

# A growing rendition is not measured yet: BANDWIDTH is the nominal bit rate plus this much for the fMP4
# boxes and the encoder's swing between segments (measured: 64 kbit/s AAC peaks at 66-69 kbit/s).
NOMINAL_PEAK_MARGIN = 1.15


def master_playlist(
    *, track_id: int, renditions: Sequence[Rendition], nominal_bps: Mapping[str, int] | None = None
) -> str:
    """Variants at their measured bit rates; or, with `nominal_bps` (profile -> bit/s), those of a growing
    rendition, pointing at its live playlists."""
    master = m3u8.M3U8()
    master.is_independent_segments = True
    prefix = RenditionStorage.url_prefix(track_id=track_id, rendition_key=renditions[0].rendition_key)
    for rendition in renditions:
        if nominal_bps is None:
            bandwidth, average, name = rendition.peak_bitrate_bps, rendition.average_bitrate_bps, PLAYLIST_NAME
        else:
            average = nominal_bps[rendition.profile]
            bandwidth, name = round(average * NOMINAL_PEAK_MARGIN), LIVE_PLAYLIST_NAME
        stream_info = {"bandwidth": bandwidth, "average_bandwidth": average, "codecs": rendition.codecs}
        master.add_playlist(
            m3u8.Playlist(uri=f"{prefix}/{rendition.profile}/{name}", stream_info=stream_info, media=[], base_uri="")
        )
    return master.dumps()
