"""A real Celery worker (the Procfile's command, on this test's own queue) killed with its whole process group
in the middle of a download: nothing partial becomes a track, and once beat's reclaim finds the download's
lock free a new worker resumes the part file with a Range request and finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from apps.library.models import AudioFile, Track
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode
from apps.podcasts.services import dispatch
from apps.podcasts.services.downloads import episodes_download_request, episodes_reclaim, parts_folder
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from tests.audio import make_audio
from tests.conftest import child_database_url, wait_for
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start_worker(process_env: dict[str, str]) -> subprocess.Popen:
    env = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
        "PODCAST_ALLOW_PRIVATE_HOSTS": "true",
        "PODCAST_FETCH_TIMEOUT": "120",
    }
    command = [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-Q", dispatch.QUEUE, "--concurrency=1",
               "--loglevel=WARNING", "--without-gossip", "--without-mingle"]  # fmt: skip
    return subprocess.Popen(command, env=env, start_new_session=True)


def test_a_worker_killed_mid_download_leaves_no_track_and_the_download_resumes(
    podcast_library, feed_server, tmp_path: Path, process_env
):
    audio = make_audio(tmp_path / "long.mp3", seconds=60).read_bytes()  # ~480 kB at 64 kbit/s
    half = len(audio) // 2
    feed_server.routes["/feed.xml"] = Route(body=rss("Show", items(feed_server.base, 1)))
    feed_server.routes["/audio/ep-1.mp3"] = Route(
        body=audio, content_type="audio/mpeg", stall_after_bytes=half, stall_s=60
    )
    subscription = subscription_create(user=None, library=podcast_library, feed_url=feed_server.url("/feed.xml"),
                                       refresh=False, auto_download=AutoDownload.NONE)  # fmt: skip
    subscription_refresh(subscription_id=subscription.pk)
    episode = FeedEpisode.objects.get()
    part = parts_folder(podcast_library) / f"{episode.pk}.part"
    assert episodes_download_request(episode_ids=[episode.pk]) == [episode.pk]  # autocommit: sent at once

    worker = start_worker(process_env)
    replacement = None
    try:
        wait_for(lambda: part.exists() and part.stat().st_size >= half, timeout_s=60, what="half downloaded",
                 process=worker)  # fmt: skip
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool child: nobody acknowledges or cleans
        worker.wait(timeout=10)
        episode.refresh_from_db()
        assert episode.state == EpisodeState.DOWNLOADING
        assert (Track.objects.count(), AudioFile.objects.count()) == (0, 0)
        assert not (Path(podcast_library.root_paths[0]) / "Show").exists()  # nothing renamed into the library
        assert part.stat().st_size == half

        feed_server.routes["/audio/ep-1.mp3"] = Route(body=audio, content_type="audio/mpeg")
        replacement = start_worker(process_env)
        # Beat's reclaim (every minute; run here, with no idle grace): the download's lock went with the
        # dead worker's connection, so it is queued again.
        assert episodes_reclaim(idle=timedelta(0)) == [episode.pk]

        def downloaded() -> bool:
            episode.refresh_from_db()
            return episode.state == EpisodeState.DOWNLOADED

        wait_for(downloaded, timeout_s=60, what="the download finished by the new worker", process=replacement)
    finally:
        for process in (worker, replacement):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    resumed = feed_server.hits[-1]
    assert (resumed.status, resumed.headers["range"]) == (206, f"bytes={half}-")
    assert Path(podcast_library.root_paths[0], episode.file_path).read_bytes() == audio
    assert (episode.download_attempts, Track.objects.get().pk) == (2, episode.track_id)
    assert not part.exists()
    assert episodes_reclaim() == []
