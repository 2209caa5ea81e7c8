"""The one call through which the library hands new or changed tracks to the streaming pipeline."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def tracks_changed(*, track_ids: list[int]) -> None:
    """Called after every successful scan with the tracks that are new or whose files changed.

    The Streaming issue makes this queue their pre-transcodes on `transcode.bulk`; until then the
    library only reports them.
    """
    if track_ids:
        logger.info("%d new or changed tracks for the streaming pipeline", len(track_ids))
