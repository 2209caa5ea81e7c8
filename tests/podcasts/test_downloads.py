"""Episode downloads from a real local HTTP server into a podcast library: auto-download, resume with
Range, the faults (HTML, 404, over the cap, not audio, disk full), chapters from the feed."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from apps.library.models import AudioFile, Track
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode
from apps.podcasts.services.downloads import (
    LOCK_NAMESPACE,
    DownloadInterrupted,
    episode_download,
    episodes_download_request,
    episodes_reclaim,
    parts_folder,
)
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from tests.audio import make_audio
from tests.factories import LibraryFactory
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import drain


@pytest.fixture
def tone(tmp_path: Path) -> bytes:
    return make_audio(tmp_path / "tone.mp3", seconds=3.0).read_bytes()


def serve_show(server, tone: bytes, count: int = 3, title: str = "My Show") -> None:
    server.routes["/feed.xml"] = Route(body=rss(title, items(server.base, count)))
    for n in range(1, count + 1):
        server.routes[f"/audio/ep-{n}.mp3"] = Route(body=tone, content_type="audio/mpeg")


def subscribed(library, server, **policy):
    subscription = subscription_create(user=None, library=library, feed_url=server.url("/feed.xml"), refresh=False,
                                       **policy)  # fmt: skip
    return subscription


def test_auto_download_of_the_newest_episodes(podcast_library, feed_server, tone, media,
                                              django_capture_on_commit_callbacks):  # fmt: skip
    serve_show(feed_server, tone)
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NEWEST, auto_download_newest=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(subscription_refresh(subscription_id=subscription.pk).queued_downloads) == 2
    ran = drain(django_capture_on_commit_callbacks)
    assert [(task.rsplit(".", 1)[1], result.state) for task, _args, result in ran] == [
        ("episode_download_task", "downloaded"), ("episode_download_task", "downloaded")
    ]  # fmt: skip
    episodes = {e.key: e for e in FeedEpisode.objects.filter(subscription=subscription)}
    assert {key: e.state for key, e in episodes.items()} == {
        "ep-3": EpisodeState.DOWNLOADED, "ep-2": EpisodeState.DOWNLOADED, "ep-1": EpisodeState.AVAILABLE
    }  # fmt: skip
    newest = episodes["ep-3"]
    assert newest.file_path == "My Show/2026-01-04 Episode 3.mp3"
    assert (media / newest.file_path).read_bytes() == tone
    assert sorted(p.name for p in (media / "My Show").iterdir()) == [
        "2026-01-03 Episode 2.mp3", "2026-01-04 Episode 3.mp3"
    ]  # fmt: skip
    assert list(parts_folder(podcast_library).iterdir()) == []
    track = Track.objects.get(pk=newest.track_id)
    assert (track.library_id, track.missing, track.group_key) == (
        podcast_library.pk,
        False,
        str(media / newest.file_path),
    )
    assert 2900 < track.duration_ms < 3200
    assert AudioFile.objects.filter(library=podcast_library).count() == 2
    # "Download now" of the third; a second request while it is queued queues nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert episodes_download_request(episode_ids=[episodes["ep-1"].pk]) == [episodes["ep-1"].pk]
        assert episodes_download_request(episode_ids=[episodes["ep-1"].pk]) == []
    assert [result.state for _, _, result in drain(django_capture_on_commit_callbacks)] == ["downloaded"]


def test_a_dropped_download_resumes_with_range_and_no_partial_track(podcast_library, feed_server, tone,
                                                                    django_capture_on_commit_callbacks):  # fmt: skip
    serve_show(feed_server, tone, count=1)
    feed_server.routes["/audio/ep-1.mp3"] = Route(body=tone, content_type="audio/mpeg", drop_after_bytes=len(tone) // 2)
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    episodes_download_request(episode_ids=[episode.pk])
    with pytest.raises(DownloadInterrupted) as caught:
        episode_download(episode_id=episode.pk)
    assert str(caught.value).startswith("connection broken")
    part = parts_folder(podcast_library) / f"{episode.pk}.part"
    assert part.stat().st_size == len(tone) // 2
    assert (Track.objects.count(), AudioFile.objects.count()) == (0, 0)  # the scanner never sees a part file
    episode.refresh_from_db()
    assert episode.state == EpisodeState.DOWNLOADING
    feed_server.routes["/audio/ep-1.mp3"] = Route(body=tone, content_type="audio/mpeg")
    result = episode_download(episode_id=episode.pk)
    assert (result.state, result.resumed_from_bytes) == ("downloaded", len(tone) // 2)
    resumed = feed_server.hits[-1]
    assert (resumed.status, resumed.headers["range"], resumed.headers["if-range"].startswith('"')) == (
        206, f"bytes={len(tone) // 2}-", True
    )  # fmt: skip
    episode.refresh_from_db()
    assert (episode.state, episode.download_attempts) == (EpisodeState.DOWNLOADED, 2)
    assert Path(podcast_library.root_paths[0], episode.file_path).read_bytes() == tone
    assert not part.exists()


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (Route(body=b"<html><body>Subscribe!</body></html>", content_type="text/html; charset=utf-8"),
         "the enclosure is a web page (text/html), not audio"),
        (Route(status=404, body=b"no"), "the enclosure is gone (HTTP 404)"),
        (Route(body=b"\x00garbage" * 5000, content_type="audio/mpeg"),
         "not an audio file (mutagen does not recognise it)"),
        (Route(body=b"x" * 300_000, content_type="audio/mpeg"),
         "too large: 300000 bytes declared, the limit is 200000 (PODCAST_EPISODE_MAX_MB)"),
        # The "2 GB" enclosure that does not say so (no Content-Length): cut while streaming, at the cap.
        (Route(body=b"x" * 600_000, content_type="audio/mpeg", send_length=False),
         "too large: more than 200000 bytes (PODCAST_EPISODE_MAX_MB)"),
        (Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
         "refused 169.254.169.254: 169.254.169.254 is a cloud metadata address"),
    ],
)  # fmt: skip
def test_enclosure_faults(podcast_library, feed_server, tone, settings, route, error):
    settings.PODCAST_EPISODE_MAX_BYTES = 200_000
    serve_show(feed_server, tone, count=1)
    feed_server.routes["/audio/ep-1.mp3"] = route
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    episodes_download_request(episode_ids=[episode.pk])
    assert episode_download(episode_id=episode.pk).error == error
    episode.refresh_from_db()
    assert (episode.state, episode.download_error, episode.track_id) == (EpisodeState.FAILED, error, None)
    assert Track.objects.count() == 0
    assert list(parts_folder(podcast_library).iterdir()) == []
    assert not (Path(podcast_library.root_paths[0]) / "My Show").exists()


def test_a_stalling_enclosure_is_retried_and_resumed(podcast_library, feed_server, tone):
    """No byte for PODCAST_FETCH_TIMEOUT (2 s here): a transient failure, the part file kept; the next
    attempt asks for the rest."""
    serve_show(feed_server, tone, count=1)
    feed_server.routes["/audio/ep-1.mp3"] = Route(body=tone, content_type="audio/mpeg", stall_after_bytes=1000,
                                                  stall_s=4)  # fmt: skip
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    episodes_download_request(episode_ids=[episode.pk])
    with pytest.raises(DownloadInterrupted) as caught:
        episode_download(episode_id=episode.pk)
    assert str(caught.value) == "stalled: no data for 2 s"
    assert (parts_folder(podcast_library) / f"{episode.pk}.part").stat().st_size == 1000
    assert Track.objects.count() == 0
    feed_server.routes["/audio/ep-1.mp3"] = Route(body=tone, content_type="audio/mpeg")
    result = episode_download(episode_id=episode.pk)
    assert (result.state, result.resumed_from_bytes) == ("downloaded", 1000)


def test_disk_full(feed_server, tone, tmp_path, db):
    root = tmp_path / "small"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        library = LibraryFactory(kind="podcast", root=root, name="Small")
        serve_show(feed_server, tone, count=1)
        feed_server.routes["/audio/ep-1.mp3"] = Route(body=tone * 40, content_type="audio/mpeg")  # > 256 KiB
        subscription = subscribed(library, feed_server, auto_download=AutoDownload.NONE)
        subscription_refresh(subscription_id=subscription.pk)
        episode = FeedEpisode.objects.get()
        episodes_download_request(episode_ids=[episode.pk])
        assert episode_download(episode_id=episode.pk).error == "disk full: the library's folder has no space left"
        assert list(parts_folder(library).iterdir()) == []  # the space is given back
        assert Track.objects.count() == 0
    finally:
        subprocess.run(["umount", str(root)], check=True)


CHAPTERS_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>Ch</title>
<item><title>With chapters</title><guid>c1</guid><pubDate>Fri, 02 Jan 2026 08:00:00 GMT</pubDate>
<enclosure url="{base}/audio/c1.mp3" type="audio/mpeg" length="1"/>
<podcast:chapters url="{base}/c1.json" type="application/json+chapters"/></item></channel></rss>"""


def test_feed_chapters_become_the_tracks_chapters(podcast_library, feed_server, tone):
    feed_server.routes["/feed.xml"] = Route(body=CHAPTERS_FEED.format(base=feed_server.base).encode())
    feed_server.routes["/audio/c1.mp3"] = Route(body=tone, content_type="audio/mpeg")
    feed_server.routes["/c1.json"] = Route(
        body=b'{"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Intro"}, '
        b'{"startTime": 1.5, "title": "Talk"}]}',
        content_type="application/json+chapters",
    )
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NEWEST, auto_download_newest=1)
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    assert episode_download(episode_id=episode.pk).state == "downloaded"
    track = Track.objects.get()
    assert list(track.chapters.values_list("index", "title", "start_ms", "end_ms")) == [
        (0, "Intro", 0, 1500), (1, "Talk", 1500, track.duration_ms)
    ]  # fmt: skip


def test_reclaim_leaves_a_download_whose_worker_is_alive(podcast_library, feed_server, tone):
    serve_show(feed_server, tone, count=1)
    subscription = subscribed(podcast_library, feed_server, auto_download=AutoDownload.NONE)
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    FeedEpisode.objects.filter(pk=episode.pk).update(state=EpisodeState.DOWNLOADING)
    worker = connections.create_connection(DEFAULT_DB_ALIAS)  # another process's session holds the lock
    try:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_NAMESPACE + episode.pk])
        assert episodes_reclaim(idle=timedelta(0)) == []
        assert episode_download(episode_id=episode.pk).state == "skipped"  # a twin never runs
    finally:
        worker.close()  # the session ends: its lock goes with it
    assert episodes_reclaim(idle=timedelta(0)) == [episode.pk]
    episode.refresh_from_db()
    assert episode.state == EpisodeState.QUEUED
