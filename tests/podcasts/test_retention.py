"""Retention with time moved forward: keep the newest N, delete finished episodes N days after completion,
never one in progress or bookmarked by anyone; a removed episode keeps its track's progress and listens and
can be downloaded again (the same track comes back)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from apps.library.models import Track
from apps.playback.models import Listen, PlaybackProgress
from apps.playback.progress.services import progress_record
from apps.playback.services.library_items import bookmark_create
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode
from apps.podcasts.services.downloads import episode_download, episodes_download_request
from apps.podcasts.services.retention import episodes_retention
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from apps.streaming.models import Rendition
from apps.streaming.storage import RenditionStorage
from tests.audio import make_audio
from tests.factories import LibraryAccessFactory, RenditionFactory, UserFactory
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route


def test_retention_rules(podcast_library, feed_server, tmp_path, media):
    tone = make_audio(tmp_path / "tone.mp3", seconds=3.0).read_bytes()
    feed_server.routes["/feed.xml"] = Route(body=rss("Show", items(feed_server.base, 5)))
    for n in range(1, 6):
        feed_server.routes[f"/audio/ep-{n}.mp3"] = Route(body=tone, content_type="audio/mpeg")
    subscription = subscription_create(
        user=None, library=podcast_library, feed_url=feed_server.url("/feed.xml"), refresh=False,
        auto_download=AutoDownload.NONE, keep_newest=2, delete_played_after_days=7,
    )  # fmt: skip
    subscription_refresh(subscription_id=subscription.pk)
    episodes = {e.key: e for e in FeedEpisode.objects.all()}
    episodes_download_request(episode_ids=[e.pk for e in episodes.values()])
    for episode in episodes.values():
        assert episode_download(episode_id=episode.pk).state == "downloaded"
        episode.refresh_from_db()
    track = {key: episode.track_id for key, episode in episodes.items()}
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for user in (alice, bob):
        LibraryAccessFactory(user=user, library=podcast_library)
    duration = Track.objects.get(pk=track["ep-5"]).duration_ms
    progress_record(user=alice, track_id=track["ep-5"], position_ms=duration, device_id="phone")  # finished
    progress_record(user=bob, track_id=track["ep-2"], position_ms=1000, device_id="web")  # in progress
    bookmark_create(user=alice, track_id=track["ep-1"], position_ms=500)
    storage = RenditionStorage.from_settings()
    rendition = RenditionFactory(track_id=track["ep-5"])
    storage.folder(track["ep-5"], rendition.rendition_key).mkdir(parents=True)

    # Six days on: ep-3 is past the newest two; ep-5 is finished but not for 7 days yet.
    assert episodes_retention(now=timezone.now() + timedelta(days=6)) == [episodes["ep-3"].pk]
    # Eight days on: ep-5 goes too. ep-2 (Bob is in the middle of it) and ep-1 (bookmarked) never.
    assert episodes_retention(now=timezone.now() + timedelta(days=8)) == [episodes["ep-5"].pk]
    states = {e.key: (e.state, e.removed_at is not None) for e in FeedEpisode.objects.all()}
    assert states == {
        "ep-5": (EpisodeState.REMOVED, True), "ep-4": (EpisodeState.DOWNLOADED, False),
        "ep-3": (EpisodeState.REMOVED, True), "ep-2": (EpisodeState.DOWNLOADED, False),
        "ep-1": (EpisodeState.DOWNLOADED, False),
    }  # fmt: skip
    assert sorted(p.name for p in (media / "Show").iterdir()) == [
        "2026-01-02 Episode 1.mp3", "2026-01-03 Episode 2.mp3", "2026-01-05 Episode 4.mp3"
    ]  # fmt: skip
    assert sorted(Track.objects.filter(missing=True).values_list("pk", flat=True)) == sorted(
        [track["ep-5"], track["ep-3"]]
    )
    assert not storage.folder(track["ep-5"], rendition.rendition_key).exists()
    assert not Rendition.objects.filter(track_id=track["ep-5"]).exists()
    # Progress and listens stay.
    assert PlaybackProgress.objects.get(user=alice, track_id=track["ep-5"]).completed is True
    assert Listen.objects.filter(user=alice, track_id=track["ep-5"]).count() == 1

    # Downloaded again: the same track is back, with its history.
    episodes_download_request(episode_ids=[episodes["ep-5"].pk])
    assert episode_download(episode_id=episodes["ep-5"].pk).track_id == track["ep-5"]
    assert Track.objects.get(pk=track["ep-5"]).missing is False
    assert Path(podcast_library.root_paths[0], FeedEpisode.objects.get(key="ep-5").file_path).exists()
