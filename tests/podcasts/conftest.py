from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.library.models import Library, LibraryKind
from apps.podcasts.services import dispatch
from tests.conftest import broker_queues_delete
from tests.factories import LibraryFactory, UserFactory
from tests.podcasts.server import FeedServer


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _podcast_settings(settings) -> None:
    """The feeds of these tests are on 127.0.0.1: allowed here (test_fetch proves the default refuses it)."""
    settings.PODCAST_ALLOW_PRIVATE_HOSTS = True
    settings.PODCAST_FETCH_TIMEOUT_S = 2


@pytest.fixture(autouse=True)
def _podcast_queue(settings, monkeypatch) -> Iterator[None]:
    """Podcast task messages on a queue of this test only (tests.podcasts.tasks_run.drain runs them)."""
    broker_url = settings.CELERY_BROKER_URL
    monkeypatch.setattr(dispatch, "QUEUE", f"test-{uuid.uuid4().hex[:8]}-podcasts")
    yield
    broker_queues_delete(broker_url, [dispatch.QUEUE])


@pytest.fixture
def podcast_library(db, media: Path) -> Library:
    return LibraryFactory(kind=LibraryKind.PODCAST, root=media, name="Podcasts")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)
