"""Polling: subscribe, refresh (conditional GET, episodes upsert), failures with backoff and pause, a moved
feed, the beat pass over due feeds. Feeds come from a real local HTTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.ops.errors import DomainError
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.subscriptions import (
    AlreadySubscribed,
    NotAllowed,
    subscription_create,
    subscription_refresh,
    subscriptions_refresh_due,
)
from tests.factories import LibraryAccessFactory, LibraryFactory, UserFactory
from tests.podcasts.feeds import Item, items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import drain, queued


def subscribe(library, url, **policy):
    return subscription_create(user=None, library=library, feed_url=url, refresh=False, **policy)


def test_subscribe_and_first_refresh(podcast_library, feed_server, admin_user, django_capture_on_commit_callbacks):
    feed_server.routes["/feed.xml"] = Route(body=rss("My Show", items(feed_server.base, 4), image="http://x/c.jpg"))
    with django_capture_on_commit_callbacks(execute=True):
        subscription = subscription_create(
            user=admin_user, library=podcast_library, feed_url=feed_server.url("/feed.xml"),
            auto_download=AutoDownload.NONE,
        )  # fmt: skip
    ran = drain(django_capture_on_commit_callbacks)
    assert [(task.rsplit(".", 1)[1], args, result.status, result.new_episodes) for task, args, result in ran] == [
        ("subscription_refresh_task", [subscription.pk, False], "updated", 4)
    ]
    subscription.refresh_from_db()
    assert (subscription.title, subscription.author, subscription.folder_name) == ("My Show", "Jane Host", "My Show")
    assert (subscription.image_url, subscription.categories, subscription.language) == (
        "http://x/c.jpg", ["Technology", "Tech News"], "en"
    )  # fmt: skip
    assert (subscription.failures, subscription.last_error, subscription.etag != "") == (0, "", True)
    now = timezone.now()
    assert now + timedelta(minutes=53) < subscription.next_poll_at < now + timedelta(minutes=67)
    episodes = list(subscription.episodes.order_by("-published_at"))
    assert [(e.key, e.title, e.state, e.in_feed) for e in episodes] == [
        (f"ep-{n}", f"Episode {n}", EpisodeState.AVAILABLE, True) for n in (4, 3, 2, 1)
    ]
    assert episodes[0].description == "<p>About <b>episode 4</b></p>"
    assert queued() == []  # policy "none": nothing downloads


def test_an_unchanged_feed_costs_one_304(podcast_library, feed_server):
    feed_server.routes["/f"] = Route(body=rss("S", items(feed_server.base, 3)))
    subscription = subscribe(podcast_library, feed_server.url("/f"), auto_download=AutoDownload.NONE)
    assert subscription_refresh(subscription_id=subscription.pk).status == "updated"
    before = FeedEpisode.objects.filter(subscription=subscription).values_list("pk", "updated_at")
    before = sorted(before)
    result = subscription_refresh(subscription_id=subscription.pk)
    assert (result.status, result.new_episodes) == ("unchanged", 0)
    assert [(hit.status, "if-none-match" in hit.headers) for hit in feed_server.hits] == [(200, False), (304, True)]
    assert sorted(FeedEpisode.objects.filter(subscription=subscription).values_list("pk", "updated_at")) == before
    # The 304 was read to its end, so the connection went back to the pool: the next refresh reuses it.
    subscription_refresh(subscription_id=subscription.pk)
    assert [hit.status for hit in feed_server.hits] == [200, 304, 304]
    assert feed_server.hits[1].client_port == feed_server.hits[2].client_port


def test_a_changed_feed_writes_only_the_episodes_that_changed(podcast_library, feed_server):
    first = items(feed_server.base, 4)
    feed_server.routes["/f"] = Route(body=rss("S", first))
    subscription = subscribe(podcast_library, feed_server.url("/f"), auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    before = dict(FeedEpisode.objects.values_list("key", "updated_at"))
    hashes = dict(FeedEpisode.objects.values_list("key", "content_hash"))
    retitled = Item("ep-2", "Episode 2, retitled", first[2].url, first[2].published)
    newer = Item("ep-5", "Episode 5", f"{feed_server.base}/audio/ep-5.mp3", first[0].published + timedelta(days=1))
    feed_server.routes["/f"] = Route(body=rss("S", [newer, first[0], first[1], retitled, first[3]]))
    assert subscription_refresh(subscription_id=subscription.pk).new_episodes == 1
    after = {key: (updated_at, content_hash, title) for key, updated_at, content_hash, title in
             FeedEpisode.objects.values_list("key", "updated_at", "content_hash", "title")}  # fmt: skip
    assert {key for key in before if after[key][0] != before[key]} == {"ep-2"}
    assert after["ep-2"][1:] != (hashes["ep-2"], "Episode 2")
    assert after["ep-2"][2] == "Episode 2, retitled"
    assert len({content_hash for _, content_hash, _ in after.values()}) == 5


def test_numbers_past_the_columns_are_no_numbers(podcast_library, feed_server):
    feed = rss("S", items(feed_server.base, 1)).replace(
        b"<enclosure",
        b"<itunes:season>99999999999</itunes:season><itunes:episode>4294967296</itunes:episode><enclosure",
    )
    feed_server.routes["/f"] = Route(body=feed)
    subscription = subscribe(podcast_library, feed_server.url("/f"), auto_download=AutoDownload.NONE)
    assert subscription_refresh(subscription_id=subscription.pk).status == "updated"
    assert list(FeedEpisode.objects.values_list("key", "season", "episode_number")) == [("ep-1", None, None)]


def test_a_changed_feed_updates_adds_and_keeps_what_left(podcast_library, feed_server):
    first = items(feed_server.base, 3)
    feed_server.routes["/f"] = Route(body=rss("S", first))
    subscription = subscribe(podcast_library, feed_server.url("/f"), auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    ids = dict(FeedEpisode.objects.values_list("key", "pk"))
    moved = Item("ep-3", "Episode 3 (fixed)", f"{feed_server.base}/cdn/ep-3.mp3", first[0].published)
    newer = Item("ep-4", "Episode 4", f"{feed_server.base}/audio/ep-4.mp3", first[0].published + timedelta(days=1))
    no_guid = Item(None, "Bonus", f"{feed_server.base}/audio/bonus.mp3", first[0].published + timedelta(hours=1))
    feed_server.routes["/f"] = Route(body=rss("S renamed", [newer, no_guid, moved, first[1]]))  # ep-1 left
    result = subscription_refresh(subscription_id=subscription.pk)
    assert (result.status, result.new_episodes) == ("updated", 2)
    rows = {e.key: e for e in FeedEpisode.objects.filter(subscription=subscription)}
    assert rows["ep-3"].pk == ids["ep-3"]  # same GUID, new enclosure URL: the same episode
    assert (rows["ep-3"].title, rows["ep-3"].enclosure_url) == ("Episode 3 (fixed)", moved.url)
    assert (rows["ep-1"].pk, rows["ep-1"].in_feed) == (ids["ep-1"], False)  # gone from the feed: kept
    assert sorted(key for key, row in rows.items() if row.in_feed) == sorted(
        ["ep-4", "ep-3", "ep-2", rows[next(k for k in rows if k.startswith("url:"))].key]
    )
    subscription.refresh_from_db()
    assert (subscription.title, subscription.folder_name) == ("S renamed", "S")  # the folder stays


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (Route(status=500, body=b"oops"), "HTTP 500"),
        (Route(body=b"<!doctype html><html><body>Hi</body></html>", content_type="text/html"),
         "not a feed (no RSS or Atom document found)"),
        (Route(body=b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss>&x;</rss>'),
         "refused: the document declares entities or external references (EntitiesForbidden)"),
    ],
)  # fmt: skip
def test_failures_back_off_and_pause_auto_download(podcast_library, feed_server, settings, route, error):
    settings.PODCAST_PAUSE_AFTER_FAILURES = 2
    feed_server.routes["/f"] = route
    subscription = subscribe(podcast_library, feed_server.url("/f"))
    now = timezone.now()
    assert subscription_refresh(subscription_id=subscription.pk).error == error
    subscription.refresh_from_db()
    assert (subscription.failures, subscription.last_error, subscription.auto_download_paused) == (1, error, False)
    assert now + timedelta(minutes=107) < subscription.next_poll_at < now + timedelta(minutes=133)  # 2 h ± 10 %
    subscription_refresh(subscription_id=subscription.pk)
    subscription.refresh_from_db()
    assert (subscription.failures, subscription.auto_download_paused) == (2, True)
    assert now + timedelta(minutes=215) < subscription.next_poll_at < now + timedelta(minutes=265)  # 4 h ± 10 %
    # Back: a scheduled success resets the failures but not the pause; a person's refresh lifts it.
    feed_server.routes["/f"] = Route(body=rss("S", items(feed_server.base, 2)))
    assert subscription_refresh(subscription_id=subscription.pk).queued_downloads == []
    subscription.refresh_from_db()
    assert (subscription.failures, subscription.last_error, subscription.auto_download_paused) == (0, "", True)
    feed_server.routes["/f"] = Route(body=rss("S", items(feed_server.base, 3)))
    assert len(subscription_refresh(subscription_id=subscription.pk, manual=True).queued_downloads) == 3
    subscription.refresh_from_db()
    assert subscription.auto_download_paused is False


def test_by_default_a_local_feed_and_a_hop_to_a_metadata_address_are_refused(podcast_library, feed_server, settings):
    feed_server.routes["/f"] = Route(body=rss("S", items(feed_server.base, 1)))
    feed_server.routes["/moved"] = Route(status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    settings.PODCAST_ALLOW_PRIVATE_HOSTS = False  # the default
    local = subscribe(podcast_library, feed_server.url("/f"))
    assert (
        subscription_refresh(subscription_id=local.pk).error == "refused 127.0.0.1: 127.0.0.1 is not a public address"
    )
    assert feed_server.hits == []  # nothing was sent
    settings.PODCAST_ALLOW_PRIVATE_HOSTS = True  # even then, never the metadata address
    moved = subscribe(podcast_library, feed_server.url("/moved"))
    error = "refused 169.254.169.254: 169.254.169.254 is a cloud metadata address"
    assert subscription_refresh(subscription_id=moved.pk).error == error
    local.refresh_from_db()
    moved.refresh_from_db()
    assert (local.failures, moved.failures, moved.last_error, moved.episodes.count()) == (1, 1, error, 0)


def test_a_100_mb_feed_is_cut_at_the_cap(podcast_library, feed_server, settings):
    settings.PODCAST_FEED_MAX_BYTES = 2 * 1024 * 1024

    def endless():
        yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>'
        for _ in range(100):
            yield b"<item><title>x</title></item>" * 36000  # ~1 MB each

    feed_server.routes["/big"] = Route(body=endless)
    subscription = subscribe(podcast_library, feed_server.url("/big"))
    assert subscription_refresh(subscription_id=subscription.pk).error == "too large: more than 2097152 bytes"


def test_new_feed_url_and_permanent_redirects_move_the_subscription(podcast_library, feed_server):
    feed_server.routes["/old"] = Route(body=rss("S", items(feed_server.base, 1), new_feed_url=feed_server.url("/new")))
    subscription = subscribe(podcast_library, feed_server.url("/old"))
    subscription_refresh(subscription_id=subscription.pk)
    subscription.refresh_from_db()
    assert subscription.feed_url == feed_server.url("/new")
    feed_server.routes["/new"] = Route(status=301, headers={"Location": "/newer"})
    feed_server.routes["/newer"] = Route(body=rss("S", items(feed_server.base, 2)))
    subscription_refresh(subscription_id=subscription.pk)
    subscription.refresh_from_db()
    assert (subscription.feed_url, subscription.episodes.count()) == (feed_server.url("/newer"), 2)


def test_subscribe_rules(podcast_library, feed_server):
    music = LibraryFactory(name="Music")
    url = feed_server.url("/f")
    listener = UserFactory(username="listener")
    with pytest.raises(NotAllowed):
        subscription_create(user=listener, library=podcast_library, feed_url=url)
    LibraryAccessFactory(user=listener, library=podcast_library)
    with pytest.raises(NotAllowed):  # granted, but without the permission
        subscription_create(user=listener, library=podcast_library, feed_url=url)
    with pytest.raises(DomainError) as caught:
        subscribe(music, url)
    assert caught.value.fields == {"library": ["not a podcast library"]}
    with pytest.raises(DomainError) as caught:
        subscribe(podcast_library, "file:///etc/passwd")
    assert caught.value.fields == {"feed_url": ["only http and https URLs are fetched, not file: file:///etc/passwd"]}
    subscribe(podcast_library, url)
    with pytest.raises(AlreadySubscribed):
        subscribe(podcast_library, url)
    assert Subscription.objects.count() == 1


def test_beat_claims_due_feeds_once(podcast_library, django_capture_on_commit_callbacks):
    due = subscribe(podcast_library, "http://a.example/f")
    later = subscribe(podcast_library, "http://b.example/f")
    Subscription.objects.filter(pk=later.pk).update(next_poll_at=timezone.now() + timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert subscriptions_refresh_due() == [due.pk]
        assert subscriptions_refresh_due() == []  # claimed: its next poll moved on by the lease
    assert [(task.rsplit(".", 1)[1], args) for task, args in queued()] == [("subscriptions_refresh_task", [[due.pk]])]


def test_auto_download_everything_since_subscribing(podcast_library, feed_server):
    old = items(feed_server.base, 2)  # published in January 2026, before the subscription
    fresh = Item("new", "Fresh", f"{feed_server.base}/audio/new.mp3", timezone.now() + timedelta(minutes=1))
    feed_server.routes["/f"] = Route(body=rss("S", [fresh, *old]))
    subscription = subscribe(podcast_library, feed_server.url("/f"), auto_download=AutoDownload.SINCE_SUBSCRIBED)
    result = subscription_refresh(subscription_id=subscription.pk)
    assert result.queued_downloads == [FeedEpisode.objects.get(key="new").pk]
    assert sorted(FeedEpisode.objects.values_list("key", "state")) == [
        ("ep-1", "available"), ("ep-2", "available"), ("new", "queued")
    ]  # fmt: skip
