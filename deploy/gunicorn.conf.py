"""gunicorn settings for Revenge (`gunicorn revenge.wsgi -c deploy/gunicorn.conf.py`).

Environment: PORT / GUNICORN_BIND, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_TIMEOUT,
PROMETHEUS_MULTIPROC_DIR, REVENGE_TRUSTED_PROXIES / FORWARDED_ALLOW_IPS, REVENGE_PROFILE. See README.md.
"""

import multiprocessing
import os
import sys
from pathlib import Path

from prometheus_client import multiprocess

# revenge.profiles (no Django) wherever gunicorn was started from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from revenge.profiles import profile_defaults  # noqa: E402

_profile = profile_defaults()

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# Threads, not only processes: behind nginx a request is short, but without nginx a worker may stream
# a file to a client for minutes and must not block every other request of that process.
# One process per CPU (at least 2, at most 8), each with 4 threads for the requests that wait on
# PostgreSQL, Redis or a client: was 2 x CPUs + 1 processes, 5 on 2 CPUs, and every process beyond the CPUs
# added CPU per request (5 x 4 against 2 x 4 on 2 CPUs, `make bench-workers`: progress PUT 7.2 -> 4.7 ms,
# mean of three runs at 16 connections; README, "Worker model"), memory (~70 MB each) and idle wake-ups.
workers = int(
    os.environ.get("WEB_CONCURRENCY") or _profile.get("WEB_CONCURRENCY") or min(max(multiprocessing.cpu_count(), 2), 8)
)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or _profile.get("GUNICORN_THREADS") or "4")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On stop, the arbiter and each worker wait this long for requests in flight. Well inside the 30 s that
# systemd (TimeoutStopSec) and `make run`'s launcher give before SIGKILL: without nginx, a player holding a
# direct-play stream open keeps its request in flight for as long as they would wait.
graceful_timeout = 10
# nginx keeps idle upstream connections for 60 s (keepalive_timeout in deploy/nginx): gunicorn must hold
# them longer, or it closes one just as nginx reuses it (a 502 now and then).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# A restart now and then caps slow memory growth of a long-lived worker.
max_requests = 5000
max_requests_jitter = 500
# Only the proxies named here may set X-Forwarded-Proto / -For for gunicorn (wsgi.url_scheme). The same
# list the app trusts (REVENGE_TRUSTED_PROXIES, CIDRs), so the two never disagree; FORWARDED_ALLOW_IPS
# overrides it for gunicorn alone.
forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS") or os.environ.get("REVENGE_TRUSTED_PROXIES") or "127.0.0.1,::1"
)
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
wsgi_app = "revenge.wsgi:application"


def child_exit(server, worker):
    """Prometheus multiprocess mode: a dead worker's live gauges must stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


# gunicorn's control socket (for `gunicornc`) is off unless a path is given: its default path is one
# per user, which two servers on one host would fight over.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# LOG_FORMAT=json: gunicorn's own lines (errors, and the access line as `message`) as JSON too.
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
