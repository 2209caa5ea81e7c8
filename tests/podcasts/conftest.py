from __future__ import annotations

from collections.abc import Iterator

import pytest

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
