"""A real Celery worker process takes a task from a real broker and answers through the result backend."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import Celery
from django.conf import settings
from kombu import Connection

pytestmark = pytest.mark.slow

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@contextmanager
def worker(broker_url: str, queue: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A worker on its own queue, so a server running against the same broker cannot take our task."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-Q", queue, "--pool=solo", "--loglevel=WARNING"],
        env={**env, "CELERY_BROKER_URL": broker_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client_app(broker_url: str) -> Celery:
    app = Celery("revenge-test", broker=broker_url)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    return app


def round_trip(broker_url: str, env: dict[str, str]) -> dict:
    queue = f"test-{uuid.uuid4().hex[:10]}"
    app = client_app(broker_url)
    with worker(broker_url, queue, env) as process:
        result = app.send_task("apps.ops.tasks.ops_ping_task", args=[queue], queue=queue)
        try:
            answer = result.get(timeout=60)
        except Exception:
            process.terminate()
            output = process.communicate(timeout=20)[0].decode(errors="replace")
            raise AssertionError(f"worker gave no answer; its output:\n{output[-3000:]}") from None
        assert answer["pid"] == process.pid
    return answer


def test_a_worker_process_runs_a_task_through_the_redis_broker(process_env):
    assert settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://"))

    answer = round_trip(settings.CELERY_BROKER_URL, process_env)

    assert answer["echo"].startswith("test-")


def _rabbitmq_reachable() -> bool:
    try:
        with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return True
    except Exception:
        return False


def test_a_worker_process_runs_a_task_through_rabbitmq(process_env):
    if not _rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is not reachable at {RABBITMQ_URL}")

    answer = round_trip(RABBITMQ_URL, process_env)

    assert answer["echo"].startswith("test-")
