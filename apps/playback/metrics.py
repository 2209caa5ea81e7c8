"""Progress metrics. Counters and histograms add up over processes in Prometheus multiprocess mode
(PROMETHEUS_MULTIPROC_DIR); the buffer size is one value for the whole Redis, so the most recent
report wins, from whichever process made it (a PUT or the flush)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

progress_updates = Counter(
    "revenge_progress_updates",
    "Progress updates by result: ok (stored), stale (the device is behind: 409), invalid (400).",
    ["result"],
)
progress_flush_rows = Histogram(
    "revenge_progress_flush_rows",
    "Buffered progress entries written to PostgreSQL per flush statement.",
    buckets=(0, 1, 10, 100, 1000, 10_000, 100_000),
)
progress_buffer_size = Gauge(
    "revenge_progress_buffer_size",
    "Progress entries in the Redis buffer not yet flushed to PostgreSQL.",
    multiprocess_mode="mostrecent",
)
