"""Writes and side effects of the streaming pipeline, by job: `renditions` (queueing, state, locks, reclaim),
`transcode` (running one), `housekeeping`, `playback` (what a play request decides and may trigger) and
`originals` (serving a track's files). The names other apps and the tasks use are re-exported here.
"""

from __future__ import annotations

# The transcode queues, owned here and read from here at send time (renditions_request): a test points them at
# queues of its own by patching these two names (tests/conftest.py).
INTERACTIVE_QUEUE = "transcode.interactive"
BULK_QUEUE = "transcode.bulk"

# After the queue names: renditions reads them from this package.
from apps.streaming.services.analysis import track_loudness_measure  # noqa: E402
from apps.streaming.services.chunked import rendition_chunk_transcode  # noqa: E402
from apps.streaming.services.housekeeping import renditions_housekeeping  # noqa: E402
from apps.streaming.services.originals import (  # noqa: E402
    MEDIA_TYPES,
    OriginalUnavailable,
    TrackOriginal,
    track_original_open,
)
from apps.streaming.services.playback import (  # noqa: E402
    RenditionDownload,
    StreamDecision,
    StreamMode,
    master_playlist_for_playback,
    rendition_download,
    renditions_for_playback,
    stream_start,
)
from apps.streaming.services.renditions import (  # noqa: E402
    TRANSCODE_TASK,
    Outcome,
    rendition_folder_lost,
    renditions_after_scan,
    renditions_reclaim,
    renditions_request,
    renditions_retry,
)
from apps.streaming.services.transcode import rendition_transcode  # noqa: E402
from apps.streaming.storage import TMP_DIR_NAME  # noqa: E402

__all__ = [
    "BULK_QUEUE",
    "INTERACTIVE_QUEUE",
    "MEDIA_TYPES",
    "TMP_DIR_NAME",
    "TRANSCODE_TASK",
    "OriginalUnavailable",
    "Outcome",
    "RenditionDownload",
    "StreamDecision",
    "StreamMode",
    "TrackOriginal",
    "master_playlist_for_playback",
    "rendition_chunk_transcode",
    "rendition_download",
    "rendition_folder_lost",
    "rendition_transcode",
    "renditions_after_scan",
    "renditions_for_playback",
    "renditions_housekeeping",
    "renditions_reclaim",
    "renditions_request",
    "renditions_retry",
    "stream_start",
    "track_loudness_measure",
    "track_original_open",
]
