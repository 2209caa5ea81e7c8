from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import current_app
from django.core.cache import cache
from django.db import connection
from kombu import Connection
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework.test import APIClient

from apps.library.services import artwork as library_artwork
from apps.library.services import handoff as library_handoff
from apps.streaming import services as streaming_services
from tests.factories import UserFactory

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(settings) -> Iterator[None]:
    """Every test gets its own cache key prefix on the real Redis (throttle counters, locks...).

    The Redis may be shared with a running server, so nothing is flushed: the test's keys are deleted.
    """
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield
    cache.delete_pattern("*")


@pytest.fixture(autouse=True)
def _files(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # Static files straight from the apps: no `collectstatic` manifest needed in tests.
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _transcode_queues(settings, tmp_path: Path, monkeypatch) -> Iterator[None]:
    """Renditions in the test's temp folder; transcode messages on queues of this test only (the Redis may
    be shared with a running server whose worker must not take them); no pre-transcode after scans unless
    a test turns it on."""
    settings.RENDITIONS_ROOT = tmp_path / "renditions"
    settings.TRANSCODE_AFTER_SCAN = False
    # The full configured ladder for every track: the tests' tones are 64 kbit/s, which a fitted ladder would
    # give one rung; tests of the fitted ladder (tests/streaming/test_ladder.py) turn it on.
    settings.STREAMING_LADDER = "full"
    broker_url = settings.CELERY_BROKER_URL
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setattr(streaming_services, "INTERACTIVE_QUEUE", f"test-{suffix}-transcode.interactive")
    monkeypatch.setattr(streaming_services, "BULK_QUEUE", f"test-{suffix}-transcode.bulk")
    monkeypatch.setattr(library_handoff, "HANDOFF_QUEUE", f"test-{suffix}-default")
    yield
    broker_queues_delete(
        broker_url, [streaming_services.INTERACTIVE_QUEUE, streaming_services.BULK_QUEUE, library_handoff.HANDOFF_QUEUE]
    )


@pytest.fixture(autouse=True)
def _artwork_queue(settings, tmp_path: Path, monkeypatch) -> Iterator[None]:
    """Covers in the test's temp folder; variant messages on a queue of this test only."""
    settings.ARTWORK_ROOT = tmp_path / "artwork"
    broker_url = settings.CELERY_BROKER_URL
    monkeypatch.setattr(library_artwork, "VARIANTS_QUEUE", f"test-{uuid.uuid4().hex[:8]}-artwork")
    yield
    broker_queues_delete(broker_url, [library_artwork.VARIANTS_QUEUE])


def broker_queues_delete(broker_url: str, queues: list[str]) -> None:
    try:
        with Connection(broker_url) as conn:
            for queue in queues:
                conn.default_channel.queue_delete(queue)
    except (KombuOperationalError, OSError):
        pass  # a test that pointed the app at a dead broker: nothing can have been sent there


def broker_queue_messages(queue: str) -> list[dict]:
    """The task messages waiting in a queue, read without consuming them (Redis broker)."""
    with current_app.connection_for_write() as conn:
        client = conn.default_channel.client
        return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def hand_off(capture=None) -> list[list[int]]:
    """Run what a scan handed to streaming by name (the library never imports it): the task messages are
    taken off this test's hand-off queue and executed here, with the test's settings and queues (a worker
    would run them with its own). Returns the track ids of each message."""
    from apps.streaming.tasks import renditions_after_scan_task  # tests of the library run without it

    with current_app.connection_for_write() as conn:
        client = conn.default_channel.client
        raw_messages = client.lrange(library_handoff.HANDOFF_QUEUE, 0, -1)
        client.delete(library_handoff.HANDOFF_QUEUE)
    batches = []
    for raw in raw_messages:
        message = json.loads(raw)
        assert message["headers"]["task"] == library_handoff.AFTER_SCAN_TASK
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        batches.append(sorted(kwargs["track_ids"]))
        if capture is None:  # a transactional test: on_commit runs at once
            renditions_after_scan_task(**kwargs)
        else:
            with capture(execute=True):
                renditions_after_scan_task(**kwargs)
    return batches


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """An empty folder for a test's library."""
    folder = tmp_path / "library"
    folder.mkdir()
    return folder


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory(password="correct horse battery staple")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout_s: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}")
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


@pytest.fixture
def process_env() -> dict[str, str]:
    """Environment for a child process of the app (gunicorn, Celery): the same services as this run."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["TRANSCODE_AFTER_SCAN"] = "0"  # the worker tests of other apps must not queue transcodes
    env["STREAMING_LADDER"] = "full"  # as in the test process (_transcode_queues): the same rendition keys
    return env


def child_database_url(name: str | None = None) -> str:
    """The URL of the database this test run uses (pytest-django's test_<name>), for child processes; or
    of another database `name` on the same server."""
    params = connection.get_connection_params()
    user = quote(params.get("user") or "")
    password = f":{quote(params['password'])}" if params.get("password") else ""
    host = params.get("host") or ""
    port = f":{params['port']}" if params.get("port") else ""
    name = name or connection.settings_dict["NAME"]
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{name}?host={quote(host)}"
    return f"postgresql://{user}{password}@{host}{port}/{name}"
