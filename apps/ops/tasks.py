from __future__ import annotations

import os
import socket

from celery import shared_task
from django.core import management


@shared_task(name="apps.ops.tasks.ops_ping_task")
def ops_ping_task(value: str = "ping") -> dict[str, object]:
    """Round trip through the broker: answers which worker took it. Used by tests and for diagnostics."""
    return {"echo": value, "hostname": socket.gethostname(), "pid": os.getpid()}


@shared_task(name="apps.ops.tasks.ops_clear_sessions_task")
def ops_clear_sessions_task() -> None:
    """Delete expired browser sessions (run daily by beat)."""
    management.call_command("clearsessions")
