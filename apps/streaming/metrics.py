"""Prometheus metrics of the streaming pipeline (multiprocess-safe: gunicorn and Celery workers write them
to PROMETHEUS_MULTIPROC_DIR when it is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

transcode_jobs = Counter("revenge_transcode_jobs", "Transcode runs by outcome.", ["status"])
transcode_seconds = Histogram(
    "revenge_transcode_seconds",
    "Wall time of a track's transcode (every profile), publish included.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
transcode_queue_depth = Gauge(
    "revenge_transcode_queue_depth",
    "Transcode tasks waiting in the broker, per queue (sampled when /metrics is scraped).",
    ["queue"],
    multiprocess_mode="mostrecent",
)
renditions = Gauge(
    "revenge_renditions",
    "Rendition rows by status (sampled when /metrics is scraped).",
    ["status"],
    multiprocess_mode="mostrecent",
)
stream_starts = Counter("revenge_stream_starts", "Stream decisions handed out, by mode.", ["mode"])
