from __future__ import annotations

import logging

from celery import shared_task

from apps.playback.progress import buffer
from apps.playback.services import progress_buffer_flush, sessions_close_idle

logger = logging.getLogger(__name__)


@shared_task(name="apps.playback.tasks.progress_buffer_flush_task", ignore_result=True)
def progress_buffer_flush_task() -> int | None:
    """Every PROGRESS_FLUSH_INTERVAL seconds (beat): buffered progress to PostgreSQL."""
    try:
        return progress_buffer_flush()
    except buffer.UNAVAILABLE:
        # The entries wait in Redis; the next beat tries again (and writes meanwhile go to PostgreSQL).
        logger.warning("progress flush: Redis unavailable, retrying at the next interval")
        return None


@shared_task(name="apps.playback.tasks.playback_sessions_close_idle_task", ignore_result=True)
def playback_sessions_close_idle_task() -> int:
    return sessions_close_idle()
