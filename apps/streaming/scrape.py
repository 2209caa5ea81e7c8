"""Gauges read from the database and the broker, refreshed when /metrics is scraped."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import DatabaseError
from django.db.models import Count
from kombu.exceptions import ChannelError, OperationalError

from apps.streaming import metrics
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import BULK_QUEUE, INTERACTIVE_QUEUE


def streaming_metrics_sample() -> None:
    """Best effort: /metrics must answer when the database or the broker is down, that is when it is read."""
    try:
        counts: dict[str, float] = dict(
            Rendition.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
    except DatabaseError:
        counts = dict.fromkeys(RenditionStatus.values, float("nan"))
    for status in RenditionStatus.values:
        metrics.renditions.labels(status=status).set(counts.get(status, 0))
    for queue in (INTERACTIVE_QUEUE, BULK_QUEUE):
        try:
            with current_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                # kombu types default_channel as StdChannel, without queue_declare; every transport has it.
                channel: Any = conn.default_channel
                depth = channel.queue_declare(queue=queue, passive=True).message_count
        except (ChannelError, OperationalError, OSError):
            # Not declared yet (no worker ever consumed it) or the broker is down (/readyz says which).
            depth = float("nan")
        metrics.transcode_queue_depth.labels(queue=queue).set(depth)
