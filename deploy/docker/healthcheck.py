"""Health checks of the Revenge containers: `healthcheck.py web|worker|beat`, exit 0 when healthy.

Used by the image's HEALTHCHECK (web) and by deploy/docker-compose.yml (worker, beat). Standard library
only for `web` and `beat` (they run every 30 s: no Django start-up); `worker` asks the Celery worker of
this container to answer a ping through the broker, which is what proves it is consuming.
"""

from __future__ import annotations

import glob
import os
import socket
import sys
import time
import urllib.error
import urllib.request

TIMEOUT_S = 4
# Beat rewrites its schedule file at least every 3 minutes (Celery's Scheduler.sync_every) while it
# dispatches tasks; the progress flush alone is due every few seconds.
BEAT_STALE_AFTER_S = 10 * 60


def _allowed_host() -> str:
    """The Host header to send: the first ALLOWED_HOSTS entry (Django answers 400 to any other)."""
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")  # ".example.org" allows example.org and its subdomains
    return "localhost"


def check_web() -> str | None:
    bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
    port = bind.rpartition(":")[2] if not bind.startswith("unix:") else ""
    if not port.isdigit():
        return f"GUNICORN_BIND={bind!r}: no TCP port to check"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": _allowed_host()})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return None if response.status == 200 else f"/healthz answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"/healthz: {exc}"


def check_worker() -> str | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")
    # A check every 30 s is a new process each time: in multiprocess mode each would leave its metric
    # files in the folder that the worker's own processes write to.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from revenge.celery import app  # the Django settings are read here, not at every web check

    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=TIMEOUT_S - 1)
    return None if replies else f"{node} did not answer a ping"


def check_beat() -> str | None:
    data_dir = os.environ.get("REVENGE_DATA_DIR", "/var/lib/revenge/data")
    # The file name gets a suffix with some dbm back-ends (celerybeat-schedule.db, .dat...).
    files = glob.glob(os.path.join(data_dir, "celerybeat-schedule*"))
    if not files:
        return f"no celerybeat-schedule in {data_dir}"
    age_s = time.time() - max(os.path.getmtime(path) for path in files)
    return None if age_s < BEAT_STALE_AFTER_S else f"schedule not written for {age_s:.0f} s"


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat}

if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else "web"
    if role not in CHECKS:
        sys.exit(f"usage: healthcheck.py {'|'.join(CHECKS)}")
    problem = CHECKS[role]()
    if problem:
        sys.exit(f"unhealthy: {problem}")
