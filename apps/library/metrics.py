"""Prometheus metrics of library scans (multiprocess-safe: the Celery worker that runs a scan writes them to
PROMETHEUS_MULTIPROC_DIR when it is set, and /metrics adds them up with everyone else's)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

scans = Counter("revenge_scans", "Library scans finished, by status (succeeded, failed).", ["status"])
scan_files = Counter(
    "revenge_scan_files",
    "Files found by library scans, by result: added, updated, unchanged, restored (back after missing), "
    "missing (gone from disk) and error (unreadable: also counted as added or updated, kept with its error).",
    ["result"],
)
scan_seconds = Histogram(
    "revenge_scan_seconds",
    "Wall time of a library scan: walk, tag reads, database writes and track grouping.",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200),
)
