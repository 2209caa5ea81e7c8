"""The Celery app: configuration from Django settings (`CELERY_*`), tasks discovered in `apps.*.tasks`."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown
from prometheus_client import multiprocess

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

app = Celery("revenge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _mark_prometheus_process_dead(pid: int | None = None, **_: object) -> None:
    """In Prometheus multiprocess mode, drop the live gauges of a pool process that exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _flush_progress_buffer(**_: object) -> None:
    """A clean worker shutdown writes what the Redis progress buffer holds to PostgreSQL.

    Best effort: entries that cannot be written stay in Redis for the next flush by any worker.
    """
    from apps.playback.tasks import progress_buffer_flush_task  # the Django apps are loaded only by now

    progress_buffer_flush_task()
