"""Podcasts in a real Chromium against a live server: subscribe to a feed served by a real local HTTP
server (made with feedgen), see the episodes appear once the feed is read, play the downloaded one to its
end, and see retention remove it after its configured delay, with the clock moved forward (not waited for).

The Celery worker's part (the refresh and the download) is run by the test between browser steps
(tests.podcasts.tasks_run.drain), from the queue the server sent it to.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import override_settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from apps.library.models import Album, LibraryAccess, LibraryKind, Track
from apps.library.services.artwork import artwork_variants_build
from apps.podcasts.models import EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services import dispatch
from apps.podcasts.services.retention import episodes_retention
from tests.audio import make_audio
from tests.conftest import broker_queues_delete
from tests.e2e.browser import LiveServer, api_json, needs_chromium, sign_in
from tests.factories import LibraryFactory
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import FeedServer, Route
from tests.podcasts.tasks_run import drain

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]


@dataclass
class World:
    base_url: str
    feed_url: str
    media: Path


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    async_unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls between Playwright steps (see test_web_player)
    root = tmp_path_factory.mktemp("podcasts")
    (root / "static").mkdir()
    media = root / "media"
    media.mkdir()
    feeds = FeedServer()
    tone = make_audio(root / "tone.mp3", seconds=3.0).read_bytes()
    cover = io.BytesIO()
    Image.new("RGB", (400, 400), "teal").save(cover, "PNG")
    feeds.routes["/cover.png"] = Route(body=cover.getvalue(), content_type="image/png")
    feeds.routes["/show.xml"] = Route(body=rss("Browser Show", items(feeds.base, 2), image=feeds.url("/cover.png")))
    for n in (1, 2):
        feeds.routes[f"/audio/ep-{n}.mp3"] = Route(body=tone, content_type="audio/mpeg")
    overrides = override_settings(
        STATIC_ROOT=root / "static",
        RENDITIONS_ROOT=root / "renditions",
        TRANSCODE_AFTER_SCAN=False,
        PODCAST_ALLOW_PRIVATE_HOSTS=True,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    overrides.enable()
    database = connections[DEFAULT_DB_ALIAS].settings_dict
    conn_max_age = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0
    server = LiveServer()
    try:
        with django_db_blocker.unblock():
            library = LibraryFactory(name="Podcasts", kind=LibraryKind.PODCAST, root=media)
            podcaster = get_user_model().objects.create_user("podcaster", password="correct horse battery staple")
            podcaster.user_permissions.add(Permission.objects.get(codename="manage_subscriptions"))
            LibraryAccess.objects.create(user=podcaster, library=library)
        server.start()
        yield World(base_url=server.url, feed_url=feeds.url("/show.xml"), media=media)
    finally:
        server.stop()
        feeds.close()
        overrides.disable()
        database["CONN_MAX_AGE"] = conn_max_age
        if async_unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def podcast_queue(monkeypatch) -> Iterator[None]:
    monkeypatch.setattr(dispatch, "QUEUE", f"test-{uuid.uuid4().hex[:8]}-podcasts")
    yield
    broker_queues_delete(settings.CELERY_BROKER_URL, [dispatch.QUEUE])


def worker() -> list:
    """What the `podcasts` worker would do now (the test runs in autocommit: no on_commit to capture)."""
    return drain(lambda execute: nullcontext())


def test_subscribe_see_episodes_play_to_the_end_and_retention_removes_it(open_page, watch, world, podcast_queue):
    page = open_page()
    sign_in(page, world.base_url, "podcaster", "/podcasts/")
    page.get_by_label("Feed URL").fill(world.feed_url)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("h1")).to_have_text(world.feed_url)  # no title before the feed is read
    expect(page.locator("[data-episodes]")).to_contain_text("No episodes yet")

    ran = worker()  # the refresh, then the auto-download of the newest episode (the default policy: 3 newest)
    assert [task.rsplit(".", 1)[1] for task, _args, _result in ran] == [
        "subscription_refresh_task", "episode_download_task", "episode_download_task"
    ]  # fmt: skip
    # The feed's image is the show's cover once the artwork worker made its sizes.
    album = Album.objects.filter(tracks__library__name="Podcasts").distinct().get()
    assert artwork_variants_build(artwork_id=album.artwork_id) == "ready"
    page.reload()
    expect(page.locator("h1")).to_have_text("Browser Show")
    show_cover = page.locator(".album-head img.cover-image")
    expect(show_cover).to_have_attribute("src", re.compile(rf"^/art/.*/{album.artwork.hash}/300\.jpg$"))
    loaded = "() => (img => img.complete && img.naturalWidth > 0)(document.querySelector('.album-head .cover-image'))"
    page.wait_for_function(loaded, timeout=15_000)
    assert any("/art/" in entry.url and entry.status == 200 for entry in watch.network)
    rows = page.locator("[data-episode]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".episode-title")).to_have_text("Episode 2")  # newest first
    expect(rows.nth(0).locator("[data-episode-state]")).to_have_text("Downloaded")
    newest = FeedEpisode.objects.get(key="ep-2")
    track_id = newest.track_id
    assert (world.media / newest.file_path).is_file()

    rows.nth(0).get_by_role("button", name="Play Episode 2").click()
    page.wait_for_function("() => document.querySelector('[data-audio]').ended", timeout=30_000)
    page.wait_for_function(
        f"async () => (await (await fetch('/api/v1/progress/{track_id}')).json()).completed === true",
        timeout=15_000,
    )
    assert api_json(page, world.base_url, f"/api/v1/progress/{track_id}")["completed"] is True
    page.reload()
    expect(page.locator("[data-episode]").nth(0).locator("[data-episode-state]")).to_have_text("Played")

    # Delete finished episodes a day after: nothing yet at +12 h, removed at +25 h.
    Subscription.objects.update(delete_played_after_days=1)
    assert episodes_retention(now=timezone.now() + timedelta(hours=12)) == []
    assert episodes_retention(now=timezone.now() + timedelta(hours=25)) == [newest.pk]
    page.reload()
    first = page.locator("[data-episode]").nth(0)
    expect(first).to_have_attribute("data-state", EpisodeState.REMOVED)
    expect(first.locator("[data-episode-state]")).to_have_text("Removed")
    expect(first.get_by_role("button", name="Download again")).to_be_visible()
    expect(first.get_by_role("button", name="Play Episode 2")).to_have_count(0)
    assert not (world.media / newest.file_path).exists()
    assert Track.objects.get(pk=track_id).missing is True
    # The other episode was not finished: still there.
    expect(page.locator("[data-episode]").nth(1).locator("[data-episode-state]")).to_have_text("Downloaded")
