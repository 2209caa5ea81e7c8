"""A transcode whose worker died is told apart from a live one by its track lock, and queued again."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest
from celery import current_app
from django.db import connection
from prometheus_client import REGISTRY

from apps.streaming import services
from apps.streaming.models import Rendition, RenditionStatus
from tests.conftest import broker_queue_messages, child_database_url, wait_for
from tests.pipeline import music_track

pytestmark = pytest.mark.django_db


def claimed(track, django_capture_on_commit_callbacks, *, attempts: int = 1) -> None:
    """The track's rows as a worker leaves them while its ffmpeg runs (no message sent)."""
    with django_capture_on_commit_callbacks(execute=False):
        services.renditions_request(track_ids=[track.pk])
    Rendition.objects.filter(track=track).update(status=RenditionStatus.RUNNING, attempts=attempts)


def queued_tracks(queue: str) -> list[int]:
    """The track of each transcode message waiting in the queue."""
    tracks = []
    for message in broker_queue_messages(queue):
        assert message["headers"]["task"] == services.TRANSCODE_TASK
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tracks.extend(args)
    return tracks


def session_alive(backend_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the view stays as it was when the test began
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        return cursor.fetchone() is not None


def worker_lost_count() -> float:
    return REGISTRY.get_sample_value("revenge_transcode_jobs_total", {"status": "worker_lost"}) or 0.0


def test_nothing_running_costs_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert services.renditions_reclaim() == 0


def test_a_live_claim_is_left_alone_and_a_dead_one_queued_again(media: Path, django_capture_on_commit_callbacks):
    track = music_track(media, seconds=2)
    claimed(track, django_capture_on_commit_callbacks)
    worker_session = psycopg.connect(child_database_url(), autocommit=True)
    try:
        worker_session.execute("SELECT pg_advisory_lock(%s)", [services.renditions._LOCK_NAMESPACE | track.pk])
        with django_capture_on_commit_callbacks(execute=True):
            assert services.renditions_reclaim() == 0
        assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"running"}
        backend_pid = worker_session.execute("SELECT pg_backend_pid()").fetchone()[0]
    finally:
        worker_session.close()  # the worker's session ends: its lock goes with it
    wait_for(lambda: not session_alive(backend_pid), timeout_s=10, what="the session ended on the server")
    lost_before = worker_lost_count()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.renditions_reclaim() == 1
    assert worker_lost_count() == lost_before + 1
    rows = list(Rendition.objects.filter(track=track))
    assert len(rows) == 3
    assert {(r.status, r.attempts, r.error) for r in rows} == {("pending", 1, "")}
    assert queued_tracks(services.INTERACTIVE_QUEUE) == [track.pk]
    assert broker_queue_messages(services.BULK_QUEUE) == []
    # Claimed again by nobody: the next run finds nothing to do.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.renditions_reclaim() == 0


def test_a_track_that_kept_killing_its_worker_fails(media: Path, settings, django_capture_on_commit_callbacks):
    settings.TRANSCODE_MAX_ATTEMPTS = 2
    track = music_track(media, seconds=2)
    claimed(track, django_capture_on_commit_callbacks, attempts=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.renditions_reclaim() == 0
    rows = list(Rendition.objects.filter(track=track))
    assert {(r.status, r.error) for r in rows} == {("failed", "The worker running this transcode died, every attempt.")}
    assert all(r.finished_at is not None for r in rows)
    assert broker_queue_messages(services.INTERACTIVE_QUEUE) == []


def test_reclaim_runs_every_half_minute_on_the_default_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["renditions-reclaim"]
    assert entry["task"] == "apps.streaming.tasks.renditions_reclaim_task"
    assert entry["schedule"] <= 60
    route = current_app.amqp.router.route({}, entry["task"], args=(), kwargs={})
    assert route["queue"].name == "default"
