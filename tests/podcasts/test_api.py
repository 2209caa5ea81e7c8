"""The podcasts API through APIClient: permissions, subscribe, episodes, refresh and download now, OPML,
new episodes and mark all played."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.library.models import Track
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.subscriptions import subscription_refresh
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory
from tests.podcasts.feeds import Item, items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import queued

URL = "/api/v1/podcasts/subscriptions"


def test_who_may_subscribe(api_client, podcast_library, admin_user, feed_server):
    listener = UserFactory(username="listener")
    LibraryAccessFactory(user=listener, library=podcast_library)
    body = {"library": podcast_library.pk, "feed_url": feed_server.url("/f"), "auto_download": "none"}
    api_client.force_authenticate(listener)
    response = api_client.post(URL, body, format="json")
    assert (response.status_code, response.json()) == (404, {"error": {"code": "not_found", "message": "Not found."}})
    assert Subscription.objects.count() == 0
    listener.user_permissions.add(Permission.objects.get(codename="manage_subscriptions"))
    listener = type(listener).objects.get(pk=listener.pk)  # permissions are cached per instance
    api_client.force_authenticate(listener)
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 201
    assert (response.json()["feed_url"], response.json()["auto_download"]) == (feed_server.url("/f"), "none")
    response = api_client.post(URL, body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "already_subscribed")
    # A library the user was not granted is "no such library" (nothing leaks).
    other = LibraryFactory(kind="podcast", name="Other")
    response = api_client.post(URL, {**body, "library": other.pk}, format="json")
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {"library": ["No such library."]})
    api_client.force_authenticate(admin_user)
    music = LibraryFactory(name="Music")
    response = api_client.post(URL, {**body, "library": music.pk}, format="json")
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {"library": ["not a podcast library"]})
    response = api_client.post(URL, {**body, "feed_url": "ftp://x/y", "auto_download": "sometimes"}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == ["auto_download", "feed_url"]
    assert Subscription.objects.count() == 1


def test_lists_are_scoped_and_episodes_come_newest_first_with_safe_html(
    api_client, podcast_library, admin_user, feed_server, django_assert_max_num_queries
):
    episodes = items(feed_server.base, 3)
    episodes[0].description = '<p onclick="x()">Hi <script>alert(1)</script><a href="http://e.org">l</a></p>'
    feed_server.routes["/f"] = Route(body=rss("Show", episodes))
    api_client.force_authenticate(admin_user)
    subscription_id = api_client.post(
        URL, {"library": podcast_library.pk, "feed_url": feed_server.url("/f"), "auto_download": "none"}, format="json"
    ).json()["id"]
    subscription_refresh(subscription_id=subscription_id)
    with django_assert_max_num_queries(6):
        response = api_client.get(f"{URL}/{subscription_id}/episodes")
    results = response.json()["results"]
    assert [(e["title"], e["state"], e["played"]) for e in results] == [
        ("Episode 3", "available", False), ("Episode 2", "available", False), ("Episode 1", "available", False)
    ]  # fmt: skip
    assert results[0]["description_html"] == ('<p>Hi <a href="http://e.org" rel="noopener noreferrer">l</a></p>')
    stranger = UserFactory(username="stranger")
    api_client.force_authenticate(stranger)
    assert api_client.get(URL).json()["results"] == []
    assert api_client.get(f"{URL}/{subscription_id}/episodes").status_code == 404
    assert api_client.post(f"{URL}/{subscription_id}/refresh").status_code == 404
    episode_id = results[0]["id"]
    assert api_client.post(f"/api/v1/podcasts/episodes/{episode_id}/download").status_code == 404
    assert FeedEpisode.objects.get(pk=episode_id).state == EpisodeState.AVAILABLE


def test_refresh_and_download_now_queue_tasks(api_client, podcast_library, admin_user, feed_server,
                                              django_capture_on_commit_callbacks):  # fmt: skip
    feed_server.routes["/f"] = Route(body=rss("Show", items(feed_server.base, 1)))
    api_client.force_authenticate(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        subscription_id = api_client.post(
            URL, {"library": podcast_library.pk, "feed_url": feed_server.url("/f"), "auto_download": "none"},
            format="json",
        ).json()["id"]  # fmt: skip
    assert [args for _, args in queued()] == [[subscription_id, False]]
    subscription_refresh(subscription_id=subscription_id)
    episode = FeedEpisode.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post(f"{URL}/{subscription_id}/refresh").status_code == 202
        response = api_client.post(f"/api/v1/podcasts/episodes/{episode.pk}/download")
    assert (response.status_code, response.json()["state"]) == (202, "queued")
    assert [(task.rsplit(".", 1)[1], args) for task, args in queued()] == [
        ("subscription_refresh_task", [subscription_id, True]), ("episode_download_task", [episode.pk])
    ]  # fmt: skip
    response = api_client.patch(f"{URL}/{subscription_id}", {"keep_newest": 5, "folder_name": "x"}, format="json")
    assert (response.status_code, response.json()["keep_newest"]) == (200, 5)


OPML = b"""<?xml version="1.0" encoding="UTF-8"?><opml version="2.0"><head><title>Mine</title></head><body>
<outline text="Folder"><outline type="rss" text="A" xmlUrl="http://a.example/feed"/>
<outline type="rss" text="B" xmlUrl="http://b.example/feed"/></outline>
<outline type="rss" text="A again" xmlUrl="http://a.example/feed"/><outline type="rss" text="Bad" xmlUrl="gopher://c/"/>
</body></opml>"""


def test_opml_import_and_export(api_client, podcast_library, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.post(
        "/api/v1/podcasts/opml", {"library": podcast_library.pk, "opml": OPML.decode(), "auto_download": "none"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert (len(body["created"]), body["already"]) == (2, [])
    assert body["refused"] == {"gopher://c/": "only http and https URLs are fetched, not gopher: gopher://c/"}
    Subscription.objects.filter(feed_url="http://a.example/feed").update(title="Show A")
    again = api_client.post("/api/v1/podcasts/opml", {"library": podcast_library.pk, "opml": OPML.decode()},
                            format="json").json()  # fmt: skip
    assert (again["created"], again["already"]) == ([], ["http://a.example/feed", "http://b.example/feed"])
    response = api_client.get(f"/api/v1/podcasts/opml?library={podcast_library.pk}")
    assert response["Content-Type"] == "text/x-opml; charset=utf-8"
    assert response.content == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>Revenge podcasts</title></head>'
        b'<body><outline type="rss" text="http://b.example/feed" title="http://b.example/feed" '
        b'xmlUrl="http://b.example/feed" /><outline type="rss" text="Show A" title="Show A" '
        b'xmlUrl="http://a.example/feed" /></body></opml>'
    )
    bomb = b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaa">]><opml><body/></opml>'
    for document, message in ((bomb, "not an OPML document: DTDForbidden"), (b"<html/>", "not an OPML document")):
        response = api_client.post("/api/v1/podcasts/opml", {"library": podcast_library.pk, "opml": document.decode()},
                                   format="json")  # fmt: skip
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["opml"][0].startswith(message)
    assert Subscription.objects.count() == 2


def test_new_episodes_and_mark_all_played(api_client, podcast_library, admin_user, feed_server):
    feed_server.routes["/f"] = Route(body=rss("Show", [Item("a", "A", "http://x/a.mp3", timezone.now()),
                                                       Item("b", "B", "http://x/b.mp3", timezone.now())]))  # fmt: skip
    api_client.force_authenticate(admin_user)
    subscription_id = api_client.post(
        URL, {"library": podcast_library.pk, "feed_url": feed_server.url("/f"), "auto_download": "none"}, format="json"
    ).json()["id"]
    subscription_refresh(subscription_id=subscription_id)
    for key in ("a", "b"):  # as a download leaves them
        track = TrackFactory(library=podcast_library, title=key.upper(), duration_ms=60_000)
        FeedEpisode.objects.filter(key=key).update(state=EpisodeState.DOWNLOADED, track=track)
    assert [e["title"] for e in api_client.get("/api/v1/podcasts/episodes/new").json()["results"]] == ["B", "A"]
    track_a = Track.objects.get(title="A")
    api_client.put(f"/api/v1/progress/{track_a.pk}", {"position_ms": 1000, "device_id": "web"}, format="json")
    assert [e["title"] for e in api_client.get("/api/v1/podcasts/episodes/new").json()["results"]] == ["B"]
    response = api_client.post(f"{URL}/{subscription_id}/played")
    assert (response.status_code, response.json()) == (200, {"count": 2})
    assert api_client.get("/api/v1/podcasts/episodes/new").json()["results"] == []
    episodes = api_client.get(f"{URL}/{subscription_id}/episodes").json()["results"]
    assert [(e["title"], e["played"]) for e in episodes] == [("B", True), ("A", True)]
    assert AutoDownload.NONE == "none"
