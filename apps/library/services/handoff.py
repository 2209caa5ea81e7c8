"""The one call through which the library hands new or changed tracks to the streaming pipeline."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

# Sent by name (routed to the `default` queue in settings): the streaming app builds on the library app,
# so the library never imports it. Whether and how the tracks get transcoded is streaming's decision.
AFTER_SCAN_TASK = "apps.streaming.tasks.renditions_after_scan_task"
# None: the queue comes from CELERY_TASK_ROUTES. Tests point it at a queue of their own.
HANDOFF_QUEUE: str | None = None


def tracks_changed(*, track_ids: list[int]) -> None:
    """Called after every successful scan with the tracks that are new or whose files changed: the
    streaming app queues their renditions on `transcode.bulk` (unless TRANSCODE_AFTER_SCAN is off)."""
    if not track_ids:
        return
    logger.info("%d new or changed tracks for the streaming pipeline", len(track_ids))
    ids = list(track_ids)
    transaction.on_commit(
        lambda: current_app.send_task(AFTER_SCAN_TASK, kwargs={"track_ids": ids}, queue=HANDOFF_QUEUE)
    )
