"""A track's duration corrected from what was actually decoded.

The scanner takes durations from headers: an MP3's Xing/VBRI frame count, an MP4's moov atom. A file
cut short keeps that header, so it claims the length of the whole file; the scanner catches the cheap
case (a CBR MP3: its size says how much audio is there) and the transcoder, which decodes every sample,
tells the rest. Without the correction a listener sees 20 s for 0.2 s of audio, and progress is
accepted up to a position that does not exist.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.library.models import AudioFile, Chapter, Track
from apps.library.scanner.metadata import truncation_tolerance_ms
from apps.library.services.scan import _refresh_albums

logger = logging.getLogger(__name__)


def track_duration_measured(*, track: Track, measured_ms: int) -> bool:
    """Called by the transcoder with the duration it decoded: when that falls short of the track's by
    more than the scanner's tolerance, the track (its chapters, its album's total) takes the decoded one
    and its file is flagged truncated. Returns whether anything was corrected.

    Runs inside the caller's transaction (the renditions are marked ready in the same one, so nobody sees
    ready renditions next to the old duration). A multi-file book's shortfall cannot be pinned on one of
    its files from one concatenated decode: only the track is corrected then.
    """
    claimed_ms = track.duration_ms
    if measured_ms <= 0 or measured_ms >= claimed_ms - truncation_tolerance_ms(claimed_ms):
        return False
    now = timezone.now()
    with transaction.atomic():
        Track.objects.filter(pk=track.pk).update(duration_ms=measured_ms, updated_at=now)
        files = AudioFile.objects.filter(track_id=track.pk, missing=False, error="")  # what was decoded
        if len(files) == 1:
            files.update(duration_ms=measured_ms, truncated=True, updated_at=now)
        chapters = Chapter.objects.filter(track_id=track.pk)
        chapters.filter(start_ms__gte=measured_ms).delete()
        chapters.filter(end_ms__gt=measured_ms).update(end_ms=measured_ms)
        if track.album_id:
            _refresh_albums({track.album_id})
    logger.warning(
        "track %s holds %d ms of audio, not the %d ms its header claims: duration corrected",
        track.pk,
        measured_ms,
        claimed_ms,
    )
    track.duration_ms = measured_ms
    return True
