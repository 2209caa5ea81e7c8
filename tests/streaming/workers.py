"""The Procfile's Celery workers, started as `make run` starts them (a shell expands the ${...}), on this
test's own transcode queues."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

from django.conf import settings

from apps.streaming import services
from revenge.launcher import procfile_entries
from tests.conftest import BASE_DIR, child_database_url


def procfile_workers() -> dict[str, tuple[str, list[str]]]:
    """name -> (command line, its -Q queues) for each Celery worker of the Procfile."""
    workers = {}
    for name, command in procfile_entries(BASE_DIR / "Procfile"):
        words = shlex.split(command)
        if words[:4] == ["celery", "-A", "revenge", "worker"]:
            workers[name] = (command, words[words.index("-Q") + 1].split(","))
    return workers


def procfile_worker_start(name: str, process_env: dict[str, str], **env: str) -> subprocess.Popen:
    """The Procfile's line for `name`, its transcode queue swapped for this test's own (and nothing else
    consumed: other tests' messages stay put)."""
    command, queues = procfile_workers()[name]
    ours = {"transcode.interactive": services.INTERACTIVE_QUEUE, "transcode.bulk": services.BULK_QUEUE}
    command = command.replace(",".join(queues), ",".join(ours[q] for q in queues if q in ours))
    command = command.replace("celery ", f"{shlex.quote(sys.executable)} -m celery ", 1)
    command = command.replace("--loglevel=INFO", "--loglevel=WARNING")
    environment = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
        **env,
    }
    return subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], env=environment)


def worker_stop(worker: subprocess.Popen) -> None:
    # Cold shutdown: a long transcode is not waited for (its ffmpeg dies with its process).
    worker.send_signal(signal.SIGQUIT)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
