"""The master playlist, built per request (its URIs are signed and expire) with the m3u8 library."""

from __future__ import annotations

from collections.abc import Sequence

import m3u8

from apps.streaming.models import Rendition
from apps.streaming.storage import PLAYLIST_NAME, RenditionStorage


def master_playlist(*, track_id: int, renditions: Sequence[Rendition]) -> str:
    master = m3u8.M3U8()
    master.is_independent_segments = True
    prefix = RenditionStorage.url_prefix(track_id=track_id, rendition_key=renditions[0].rendition_key)
    for rendition in renditions:
        stream_info = {
            "bandwidth": rendition.peak_bitrate_bps,
            "average_bandwidth": rendition.average_bitrate_bps,
            "codecs": rendition.codecs,
        }
        master.add_playlist(
            m3u8.Playlist(
                uri=f"{prefix}/{rendition.profile}/{PLAYLIST_NAME}", stream_info=stream_info, media=[], base_uri=""
            )
        )
    return master.dumps()
