"""Readiness checks: can this process do its job right now?

Each check is cheap (one round trip) and bounded by a short timeout, so `/readyz` answers within a few
seconds even when a dependency hangs rather than refuses.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from kombu import Connection

CHECK_TIMEOUT_S = 2


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    duration_ms: float
    error: str = ""


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S
    )
    try:
        client.ping()
    finally:
        client.close()


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_S) as conn:
        # One attempt, no back-off: readiness reports the state now, it does not wait for it to improve.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT_S)
        conn.default_channel  # noqa: B018 - opening a channel is what proves the broker answers (Redis pings here)


def check_media() -> None:
    """Media and renditions storage both writable (a worker publishes renditions there)."""
    for folder in (settings.MEDIA_ROOT, settings.RENDITIONS_ROOT):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "media": check_media,
}


def run_checks() -> list[CheckResult]:
    results = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready", with its reason
            error = f"{type(exc).__name__}: {exc}".strip()[:300]
            results.append(CheckResult(name, False, _ms_since(started), error))
        else:
            results.append(CheckResult(name, True, _ms_since(started)))
    return results


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
