"""The web player's podcast pages (Django test client; the Chromium run is tests/e2e/test_podcasts.py)."""

from __future__ import annotations

import pytest

from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from tests.factories import LibraryAccessFactory, UserFactory
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import queued


@pytest.fixture
def show(podcast_library, feed_server):
    episodes = items(feed_server.base, 2)
    episodes[0].description = '<p>Notes <img src="http://tracker/x.gif"><script>alert(1)</script><b>bold</b></p>'
    feed_server.routes["/f"] = Route(body=rss("Web Show", episodes))
    subscription = subscription_create(user=None, library=podcast_library, feed_url=feed_server.url("/f"),
                                       refresh=False, auto_download=AutoDownload.NONE)  # fmt: skip
    subscription_refresh(subscription_id=subscription.pk)
    return subscription


def test_show_page_lists_episodes_newest_first_with_sanitised_notes(client, admin_user, show):
    client.force_login(admin_user)
    page = client.get(f"/podcasts/{show.pk}/").content.decode()
    assert page.index("Episode 2") < page.index("Episode 1")
    assert "<p>Notes <b>bold</b></p>" in page
    assert "tracker" not in page and "alert(1)" not in page
    assert page.count("Not downloaded") == 2 and page.count(">Download</button>") == 2
    assert ">Refresh now</button>" in page
    listing = client.get("/podcasts/").content.decode()
    assert 'name="feed_url"' in listing and f'href="/podcasts/{show.pk}/"' in listing


def test_forms_subscribe_refresh_and_download(client, admin_user, show, podcast_library, feed_server,
                                              django_capture_on_commit_callbacks):  # fmt: skip
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/podcasts/subscribe", {"library": podcast_library.pk, "feed_url": feed_server.url("/g")}
        )
        created = Subscription.objects.get(feed_url=feed_server.url("/g"))
        assert (response.status_code, response["Location"]) == (302, f"/podcasts/{created.pk}/")
        episode = FeedEpisode.objects.filter(subscription=show).first()
        assert client.post(f"/podcasts/{show.pk}/refresh").status_code == 302
        assert client.post(f"/podcasts/episodes/{episode.pk}/download").status_code == 302
    assert [args for _, args in queued()] == [[created.pk, False], [show.pk, True], [episode.pk]]
    episode.refresh_from_db()
    assert episode.state == EpisodeState.QUEUED
    again = client.post("/podcasts/subscribe", {"library": podcast_library.pk, "feed_url": feed_server.url("/g")},
                        follow=True)  # fmt: skip
    assert "This library is already subscribed to that feed." in again.content.decode()


def test_a_listener_sees_shows_but_may_not_manage_them(client, show, podcast_library):
    listener = UserFactory(username="listener")
    LibraryAccessFactory(user=listener, library=podcast_library)
    client.force_login(listener)
    page = client.get(f"/podcasts/{show.pk}/").content.decode()
    assert "Episode 2" in page and ">Download</button>" not in page and "Refresh now" not in page
    assert 'name="feed_url"' not in client.get("/podcasts/").content.decode()
    episode = FeedEpisode.objects.filter(subscription=show).first()
    assert client.post(f"/podcasts/episodes/{episode.pk}/download").status_code == 404
    assert client.post(f"/podcasts/{show.pk}/refresh").status_code == 404
    assert (
        client.post("/podcasts/subscribe", {"library": podcast_library.pk, "feed_url": "http://x/f"}).status_code == 404
    )
    assert FeedEpisode.objects.filter(state=EpisodeState.QUEUED).count() == 0
    stranger = UserFactory(username="stranger")
    client.force_login(stranger)
    assert client.get(f"/podcasts/{show.pk}/").status_code == 404
