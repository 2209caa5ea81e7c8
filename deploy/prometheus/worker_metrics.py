"""Serve the Prometheus metrics that Celery workers write to PROMETHEUS_MULTIPROC_DIR, over HTTP.

    WORKER_METRICS_BIND=0.0.0.0:9810 python deploy/prometheus/worker_metrics.py

Celery workers count transcodes (revenge_transcode_jobs_total, revenge_transcode_seconds), scans and progress
flushes into the multiprocess folder like gunicorn does, and the web node's /metrics adds up every file
in that folder. That covers the workers only where they share the folder (and the PID namespace) with a
web node: one host under systemd. A worker in its own container or on its own machine runs this next to
it instead (deploy/docker/entrypoint.sh starts it when WORKER_METRICS_BIND is set; deploy/systemd has a
unit), and Prometheus scrapes it as the `revenge-workers` job. Never run it where a web node reads the
same folder: the same counters would then be scraped twice.

It only reads the folder (it defines no metric of its own), so it never writes a file a worker could
collide with. No authentication: bind it to an address that only Prometheus can reach.
"""

from __future__ import annotations

import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """One line per scrape would drown the worker's own log."""


def main() -> int | str:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not folder or not os.path.isdir(folder):
        return f"PROMETHEUS_MULTIPROC_DIR={folder!r}: not a folder; the workers must run in multiprocess mode"
    host, _, port = os.environ.get("WORKER_METRICS_BIND", "127.0.0.1:9810").rpartition(":")
    if not port.isdigit():
        return "WORKER_METRICS_BIND: expected host:port, e.g. 0.0.0.0:9810"
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    server = make_server(host.strip("[]") or "0.0.0.0", int(port), make_wsgi_app(registry), handler_class=_QuietHandler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
