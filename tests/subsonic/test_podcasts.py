"""The podcast methods of /rest/ over apps.podcasts, against the local feed server of tests/podcasts (a real
HTTP server serving RSS and audio): who may see and who may manage, the bad-input table, and a scenario
driven by py-opensonic and py-sonic on a live server (subscribe, refresh, list, download, stream the
download, newest, delete an episode, unsubscribe), every answer checked against the spec's schemas in JSON
and XML."""

from __future__ import annotations

import hashlib
import json
import subprocess

import libopensonic
import libsonic
import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client

from apps.accounts.services import app_password_create
from apps.library.models import LibraryKind
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from tests.audio import make_audio
from tests.factories import LibraryFactory, UserFactory
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import drain, queued
from tests.streaming.hls_checks import decoded_seconds
from tests.subsonic.conftest import PASSWORD, grant
from tests.subsonic.schemas import check, check_xml
from tests.subsonic.test_clients import opensonic_bytes


def call(method: str, *, fmt: str = "json", user: str = "listener", **params) -> dict:
    params = {"u": user, "p": PASSWORD, "v": "1.16.1", "c": "tests", "f": fmt, **params}
    response = Client().get(f"/rest/{method}", params)
    assert response.status_code == 200, response.status_code
    return check_xml(response.content) if fmt == "xml" else check(json.loads(response.content))


def code(answer: dict) -> int | None:
    return answer["error"]["code"] if answer["status"] == "failed" else None


def serve_show(server, count: int, audio: bytes = b"") -> str:
    server.routes["/feed.xml"] = Route(body=rss("Show", items(server.base, count)))
    for n in range(1, count + 1):
        server.routes[f"/audio/ep-{n}.mp3"] = Route(body=audio or b"ID3", content_type="audio/mpeg")
    return server.url("/feed.xml")


@pytest.mark.django_db
def test_who_sees_and_who_manages_and_bad_input(listener, feed_server, media, django_capture_on_commit_callbacks):
    library = LibraryFactory(kind=LibraryKind.PODCAST, root=media, name="Podcasts")
    grant(listener, library)
    url = serve_show(feed_server, 2)
    show = subscription_create(user=None, library=library, feed_url=url, refresh=False, auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=show.pk)
    newest = FeedEpisode.objects.get(subscription=show, key="ep-2")
    channel_id, episode_id = f"pc-{show.pk}", f"pe-{newest.pk}"

    # A listener of the library sees the show and its episodes, in JSON and XML alike.
    answer = call("getPodcasts")
    assert call("getPodcasts.view", fmt="xml") == answer
    [channel] = answer["podcasts"]["channel"]
    assert {key: channel[key] for key in ("id", "url", "title", "description", "status")} == {
        "id": channel_id, "url": url, "title": "Show", "description": "All about Show", "status": "completed"
    }  # fmt: skip
    assert [(e["id"], e["title"], e["status"], e["description"], e["channelId"]) for e in channel["episode"]] == [
        (episode_id, "Episode 2", "skipped", "About episode 2", channel_id),
        (f"pe-{FeedEpisode.objects.get(key='ep-1').pk}", "Episode 1", "skipped", "About episode 1", channel_id),
    ]  # fmt: skip
    assert "streamId" not in channel["episode"][0]  # nothing downloaded: nothing to stream
    assert "episode" not in call("getPodcasts", includeEpisodes="false")["podcasts"]["channel"][0]
    assert call("getPodcastEpisode", id=episode_id)["podcastEpisode"] == channel["episode"][0]
    assert call("getNewestPodcasts")["newestPodcasts"] == {"episode": []}  # only downloaded episodes are "newest"
    assert call("getUser")["user"]["podcastRole"] is False

    # ... but may not manage it: 50, and nothing changes or is queued.
    for method, params in (("createPodcastChannel", {"url": feed_server.url("/other.xml")}), ("refreshPodcasts", {}),
                           ("downloadPodcastEpisode", {"id": episode_id}), ("deletePodcastEpisode", {"id": episode_id}),
                           ("deletePodcastChannel", {"id": channel_id})):  # fmt: skip
        assert code(call(method, **params)) == 50, method
    assert Subscription.objects.count() == 1
    assert FeedEpisode.objects.get(pk=newest.pk).state == EpisodeState.AVAILABLE
    assert queued() == []

    # Someone without a grant sees nothing, and any id of another kind is "not found" like an unknown one.
    UserFactory(username="stranger", password=PASSWORD)
    assert call("getPodcasts", user="stranger")["podcasts"] == {"channel": []}
    assert code(call("getPodcasts", user="stranger", id=channel_id)) == 70
    assert code(call("getPodcastEpisode", user="stranger", id=episode_id)) == 70
    assert code(call("downloadPodcastEpisode", user="stranger", id=episode_id)) == 70
    for value in (f"tr-{newest.pk}", f"pc-{show.pk}", "pe-", "pe-x", "pe-99999999", "pe--1"):
        assert code(call("getPodcastEpisode", id=value)) == 70, value
    assert code(call("getPodcasts", id=episode_id)) == 70
    assert code(call("getPodcastEpisode")) == 10

    # With the podcasts permission on the granted library.
    listener.user_permissions.add(Permission.objects.get(codename="manage_subscriptions"))
    assert call("getUser")["user"]["podcastRole"] is True
    assert code(call("createPodcastChannel")) == 10
    assert code(call("createPodcastChannel", url="ftp://example.org/feed")) == 10
    already = call("createPodcastChannel", url=url)
    assert (code(already), already["error"]["message"]) == (
        0,
        "This library is already subscribed to that feed. feed_url: already subscribed",
    )
    assert code(call("createPodcastChannel", url=url, musicFolderId=library.pk + 1000)) == 70
    assert Subscription.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert call("downloadPodcastEpisode", id=episode_id)["status"] == "ok"
    assert call("getPodcastEpisode", id=episode_id)["podcastEpisode"]["status"] == "downloading"
    busy = call("deletePodcastEpisode", id=episode_id)
    assert (code(busy), busy["error"]["message"]) == (0, "This episode is being downloaded; delete it once it is done.")
    assert FeedEpisode.objects.get(pk=newest.pk).state == EpisodeState.QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        assert call("refreshPodcasts")["status"] == "ok"
    assert [(task.rsplit(".", 1)[1], args) for task, args in queued()] == [
        ("episode_download_task", [newest.pk]), ("subscription_refresh_task", [show.pk, True])
    ]  # fmt: skip
    assert call("deletePodcastChannel", id=channel_id)["status"] == "ok"
    assert Subscription.objects.count() == 0
    assert code(call("getPodcasts", id=channel_id)) == 70


def _lists_kept(tree):
    if isinstance(tree, dict):
        return {key: _lists_kept(value) for key, value in tree.items() if value != []}
    return [_lists_kept(item) for item in tree] if isinstance(tree, list) else tree


def decode_s(body: bytes) -> float:
    run = subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-stats", "-i", "pipe:0", "-f", "null", "-"],
        input=body, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return decoded_seconds(run.stderr.decode(errors="replace"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_podcasts_with_py_opensonic_and_py_sonic(live_server, feed_server, media, tmp_path, settings,
                                                 django_capture_on_commit_callbacks):  # fmt: skip
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tone = make_audio(tmp_path / "tone.mp3", seconds=4.0).read_bytes()
    url = serve_show(feed_server, 4, tone)
    LibraryFactory(kind=LibraryKind.PODCAST, root=media, name="Podcasts")
    owner = UserFactory(username="owner", password=PASSWORD, is_staff=True)
    app_password = app_password_create(user=owner, name="phone")[1]
    host, port = live_server.url.rsplit(":", 1)

    # py-opensonic, by token and salt with the app password (its default).
    app = libopensonic.Connection(host, "owner", app_password, port=int(port), app_name="opensonic")
    try:
        assert app.create_podcast_channel(url) is True
        # The first refresh, then the policy's downloads (the newest 3 by default), as the worker runs them.
        ran = drain(django_capture_on_commit_callbacks)
        assert [task.rsplit(".", 1)[1] for task, _args, _result in ran] == [
            "subscription_refresh_task", *["episode_download_task"] * 3
        ]  # fmt: skip
        [channel] = app.get_podcasts()
        assert (channel.title, channel.url, channel.status.value) == ("Show", url, "completed")
        assert [(e.title, e.status.value) for e in channel.episode] == [
            ("Episode 4", "completed"), ("Episode 3", "completed"), ("Episode 2", "completed"),
            ("Episode 1", "skipped"),
        ]  # fmt: skip
        oldest = channel.episode[-1]
        assert oldest.stream_id is None
        assert app.download_podcast_episode(oldest.id) is True
        drain(django_capture_on_commit_callbacks)
        episode = app.get_podcast_episode(oldest.id)
        assert (episode.status.value, episode.channel_id, episode.type) == ("completed", channel.id, "podcast")
        assert episode.stream_id.startswith("tr-") and episode.duration == 4
        response = app.stream(episode.stream_id, tformat="raw")
        assert round(decode_s(opensonic_bytes(app, response))) == 4
        assert [e.title for e in app.get_newest_podcasts(count=2)] == ["Episode 4", "Episode 3"]
        assert app.delete_podcast_episode(oldest.id) is True
        assert app.get_podcast_episode(oldest.id).status.value == "deleted"
        assert not (media / "Show" / "2026-01-02 Episode 1.mp3").exists()
    finally:
        app.cleanup()

    # The same answers, raw, in JSON and XML against the schemas.
    salt = "c0ffee"
    auth = {"u": "owner", "t": hashlib.md5((app_password + salt).encode()).hexdigest(), "s": salt, "v": "1.16.1",
            "c": "schema"}  # fmt: skip
    for method, params in (("getPodcasts", {}), ("getNewestPodcasts", {}), ("getPodcastEpisode", {"id": oldest.id}),
                           ("getPodcasts", {"id": channel.id, "includeEpisodes": "false"})):  # fmt: skip
        as_json = check(requests.get(f"{live_server.url}/rest/{method}", {**auth, **params, "f": "json"}).json())
        as_xml = check_xml(requests.get(f"{live_server.url}/rest/{method}.view", {**auth, **params}).content)
        assert _lists_kept(as_json) == as_xml, method  # XML has no empty list: an element repeated 0 times
        assert as_json["status"] == "ok", (method, as_json)

    # py-sonic (JSON), the app password sent as p: refresh, then unsubscribe.
    legacy = libsonic.Connection(host, "owner", app_password, port=int(port), appName="pysonic", legacyAuth=True)
    shows = legacy.getPodcasts(incEpisodes=False)["podcasts"]["channel"]
    assert [(show["id"], show["title"]) for show in shows] == [(channel.id, "Show")]
    assert legacy.refreshPodcasts()["status"] == "ok"
    assert [task.rsplit(".", 1)[1] for task, _args in queued()] == ["subscription_refresh_task"]
    assert legacy.deletePodcastChannel(channel.id)["status"] == "ok"
    assert legacy.getPodcasts()["podcasts"] == {"channel": []}
    assert Subscription.objects.count() == 0
