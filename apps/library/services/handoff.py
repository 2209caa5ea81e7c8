"""The one call through which the library hands new or changed tracks to the streaming pipeline."""

from __future__ import annotations

import logging

from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def tracks_changed(*, track_ids: list[int]) -> None:
    """Called after every successful scan with the tracks that are new or whose files changed: their
    renditions are queued on `transcode.bulk` (unless TRANSCODE_AFTER_SCAN is off).

    Imported by name: the streaming app builds on the library app, not the other way round.
    """
    if track_ids:
        logger.info("%d new or changed tracks for the streaming pipeline", len(track_ids))
        import_string("apps.streaming.services.renditions_after_scan")(track_ids=track_ids)
