#!/bin/sh
# Entry point of the Revenge image: prepare the per-container runtime folder, then run the command
# (gunicorn by default; `celery ...`, `python manage.py ...` for the other roles).
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    # Prometheus multiprocess mode: every process of this container writes its metrics here and
    # /metrics adds them up. Files left by a previous run of the container (a restart keeps the
    # container's file system unless the folder is a tmpfs) would add into this one, and a recycled
    # PID would append to a dead process's file: start empty.
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"
    mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
    # Worker containers: their metrics never reach a web node's /metrics (another container, another
    # PID namespace), so they are served from here (deploy/prometheus/worker_metrics.py).
    if [ -n "${WORKER_METRICS_BIND:-}" ]; then
        python /opt/revenge/deploy/prometheus/worker_metrics.py &
    fi
fi

exec "$@"
