"""The Redis buffer (PROGRESS_WRITE_MODE=buffered): flush, crashes, Redis outages, worker shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.library.models import Track
from apps.playback.models import Listen, PlaybackProgress
from apps.playback.progress import buffer
from apps.playback.progress.flush import FLUSH_LOCK_ID
from apps.playback.progress.schedule import WhileBuffered
from apps.playback.services import progress_buffer_flush, progress_buffer_write, progress_record
from apps.playback.tasks import progress_buffer_flush_task
from tests.conftest import BASE_DIR, child_database_url, wait_for
from tests.playback.conftest import at, put, settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _buffered(settings) -> None:
    settings.PROGRESS_WRITE_MODE = "buffered"


def rows() -> list[tuple]:
    return list(
        PlaybackProgress.objects.order_by("user_id", "track_id").values_list(
            "user_id", "track_id", "position_ms", "completed", "play_count", "device_id"
        )
    )


def listens() -> list[tuple]:
    return list(Listen.objects.order_by("user_id", "track_id", "play_number").values_list(
        "user_id", "track_id", "play_number", "device_id"))  # fmt: skip


def entry_ttl(user, track) -> int:
    return buffer._client().ttl(buffer._key(f"e:{user.pk}:{track.pk}"))


def test_the_flush_writes_every_dirty_entry_with_its_listens_and_marks_them_clean(world):
    put(world.client, world.song, 150_000, client_updated_at=at(1))
    put(world.client, world.book, 60_000, client_updated_at=at(2))
    put(world.other_client, world.song, 20_000, device_id="tv", client_updated_at=at(3))
    assert buffer.buffer_dirty_count() == 3 and rows() == []
    assert entry_ttl(world.listener, world.song) == -1  # a dirty entry never expires
    histogram = {"count": "revenge_progress_flush_rows_count", "sum": "revenge_progress_flush_rows_sum"}
    before = {name: REGISTRY.get_sample_value(sample) or 0 for name, sample in histogram.items()}

    assert progress_buffer_flush() == 3

    me, them = world.listener.pk, world.other.pk
    assert rows() == [
        (me, world.song.pk, 150_000, True, 1, "phone"),
        (me, world.book.pk, 60_000, False, 0, "phone"),
        (them, world.song.pk, 20_000, False, 0, "tv"),
    ]
    assert listens() == [(me, world.song.pk, 1, "phone")]
    assert buffer.buffer_dirty_count() == 0
    assert 0 < entry_ttl(world.listener, world.song) <= django_settings.PROGRESS_BUFFER_TTL_S
    after = {name: REGISTRY.get_sample_value(sample) for name, sample in histogram.items()}
    assert (after["count"] - before["count"], after["sum"] - before["sum"]) == (1, 3)
    assert REGISTRY.get_sample_value("revenge_progress_buffer_size") == 0
    assert progress_buffer_flush() == 0  # nothing left to do

    # The flushed entry stays in Redis as the base of the next update: no PostgreSQL read for it.
    put(world.client, world.song, 160_000, client_updated_at=at(4))
    settle()
    assert rows()[0] == (me, world.song.pk, 160_000, True, 1, "phone")
    assert len(listens()) == 1


def test_a_flush_that_dies_after_its_commit_is_retried_without_counting_twice(world):
    put(world.client, world.song, 150_000, client_updated_at=at(1))
    put(world.client, world.book, 60_000, client_updated_at=at(1))
    entries = buffer.buffer_snapshot(limit=100)
    progress_buffer_write(entries=entries)  # committed; the process dies before marking them clean
    put(world.client, world.book, 70_000, client_updated_at=at(2))  # and a device went on meanwhile

    assert progress_buffer_flush() == 2

    me = world.listener.pk
    assert rows() == [(me, world.song.pk, 150_000, True, 1, "phone"), (me, world.book.pk, 70_000, False, 0, "phone")]
    assert listens() == [(me, world.song.pk, 1, "phone")]
    assert buffer.buffer_dirty_count() == 0
    # The entry PostgreSQL already held was dropped from Redis; the next update seeds it again.
    put(world.client, world.song, 10_000, client_updated_at=at(3))
    put(world.client, world.song, 120_000, client_updated_at=at(4))
    settle()
    assert rows()[0] == (me, world.song.pk, 120_000, True, 2, "phone")
    assert [listen[2] for listen in listens()] == [1, 2]


def test_a_listen_flushed_while_its_entry_changed_is_not_written_again(world):
    put(world.client, world.song, 150_000, client_updated_at=at(1))
    entries = buffer.buffer_snapshot(limit=100)
    progress_buffer_write(entries=entries)
    put(world.client, world.song, 160_000, client_updated_at=at(2))  # version changed before the ack
    buffer.buffer_ack(acks=[(entries[0].member, entries[0].version, 1, True)])

    assert buffer.buffer_dirty_count() == 1  # the newer write still waits
    settle()
    assert rows() == [(world.listener.pk, world.song.pk, 160_000, True, 1, "phone")]
    assert len(listens()) == 1


def test_entries_of_a_deleted_track_are_dropped_without_failing_the_flush(world):
    put(world.client, world.song, 150_000)
    put(world.client, world.book, 60_000)
    Track.objects.filter(pk=world.song.pk).delete()

    assert progress_buffer_flush() == 2

    assert rows() == [(world.listener.pk, world.book.pk, 60_000, False, 0, "phone")]
    assert listens() == []
    assert buffer.buffer_dirty_count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_flush_killed_between_reading_and_committing_is_redone_exactly_once(world, process_env):
    put(world.client, world.song, 50_000, client_updated_at=at(1))
    settle()
    put(world.client, world.song, 150_000, client_updated_at=at(2))  # completes: a listen waits in Redis
    me = world.listener.pk
    # Hold the row, so that the flush process blocks inside its statement, after reading Redis.
    blocker = psycopg.connect(child_database_url())
    blocker.execute("SELECT 1 FROM playback_playbackprogress WHERE user_id = %s FOR UPDATE", [me])
    env = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "CACHE_KEY_PREFIX": django_settings.CACHES["default"]["KEY_PREFIX"],
    }
    flusher = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup(); "
         "from apps.playback.services import progress_buffer_flush; progress_buffer_flush()"],
        cwd=BASE_DIR, env={**env, "DJANGO_SETTINGS_MODULE": "revenge.settings"},
    )  # fmt: skip
    try:
        waiting: list[int] = []

        def blocked() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                waiting[:] = [pid for (pid,) in cursor.fetchall()]
            return bool(waiting)

        wait_for(blocked, timeout_s=30, what="the flush waiting on the row", process=flusher)
        flusher.kill()
        flusher.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()

    def backend_gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [waiting])
            return cursor.fetchone()[0] == 0

    wait_for(backend_gone, timeout_s=30, what="the killed flush's backend to end")
    assert rows() == [(me, world.song.pk, 50_000, False, 0, "phone")]  # its transaction never committed
    assert listens() == []
    assert buffer.buffer_dirty_count() == 1

    assert progress_buffer_flush() == 1
    assert progress_buffer_flush() == 0

    assert rows() == [(me, world.song.pk, 150_000, True, 1, "phone")]
    assert listens() == [(me, world.song.pk, 1, "phone")]


def test_redis_unreachable_writes_go_straight_to_postgresql_and_lose_nothing(world, redis_server):
    assert put(world.client, world.book, 60_000, client_updated_at=at(1)).status_code == 200
    assert rows() == []  # in Redis, not yet in PostgreSQL
    redis_server.kill()

    started = time.monotonic()
    response = put(world.client, world.book, 120_000, device_id="laptop", client_updated_at=at(2))
    assert response.status_code == 200
    assert time.monotonic() - started < 2
    me = world.listener.pk
    assert rows() == [(me, world.book.pk, 120_000, False, 0, "laptop")]
    assert world.client.get(f"/api/v1/progress/{world.book.pk}").json()["position_ms"] == 120_000
    assert world.client.get("/api/v1/progress?state=in_progress").json()["count"] == 1

    # Redis back, with the older write it acknowledged: the flush keeps the newer one.
    redis_server.start()
    assert world.client.get(f"/api/v1/progress/{world.book.pk}").json()["position_ms"] == 120_000
    assert progress_buffer_flush() == 1
    assert rows() == [(me, world.book.pk, 120_000, False, 0, "laptop")]
    assert buffer.buffer_dirty_count() == 0


def test_an_unreachable_buffer_is_one_warning_line_not_a_traceback_per_request(world, redis_server, caplog):
    redis_server.kill()
    with caplog.at_level("WARNING", logger="apps.playback"):
        assert put(world.client, world.song, 10_000).status_code == 200
        assert world.client.get(f"/api/v1/progress/{world.song.pk}").status_code == 200
        assert world.client.get("/api/v1/progress?state=in_progress").status_code == 200
        buffer.buffer_reset_breaker()  # RETRY_AFTER_S later: tried again, failed again, one more line
        assert world.client.get(f"/api/v1/progress/{world.song.pk}").status_code == 200

    lines = [(record.name, record.exc_info, record.getMessage()) for record in caplog.records]
    assert [(name, exc_info) for name, exc_info, _ in lines] == [("apps.playback.progress.buffer", None)] * 2
    assert lines[0][2].startswith("progress buffer unavailable (") and "PostgreSQL only for 5 s" in lines[0][2]
    assert "Traceback" not in caplog.text


def test_after_a_failure_redis_is_left_alone_for_a_few_seconds(world, redis_server):
    redis_server.kill()
    assert put(world.client, world.song, 10_000).status_code == 200  # tries Redis, fails, writes direct
    redis_server.start()

    assert put(world.client, world.song, 20_000).status_code == 200  # does not even try
    assert rows() == [(world.listener.pk, world.song.pk, 20_000, False, 0, "phone")]
    assert buffer.buffer_dirty_count() == 0

    buffer.buffer_reset_breaker()  # what RETRY_AFTER_S seconds do
    assert put(world.client, world.song, 30_000).status_code == 200
    assert buffer.buffer_dirty_count() == 1
    assert rows()[0][2] == 20_000


def test_a_clean_copy_older_than_a_direct_write_is_replaced_not_trusted(world, redis_server):
    """A flushed entry stays in Redis as a clean copy of the row. Writes that went straight to PostgreSQL
    while Redis was unreachable make that copy out of date: it must not judge what comes next."""
    me, song = world.listener.pk, world.song  # music, 200 s: a play counts at 100 s
    assert put(world.client, song, 1_000, client_updated_at=at(10)).status_code == 200
    settle()  # flushed: Redis keeps a clean copy
    redis_server.kill()
    completed = put(world.client, song, 150_000, client_updated_at=at(20))  # straight to PostgreSQL
    assert completed.status_code == 200 and completed.json()["play_count"] == 1
    redis_server.start()
    buffer.buffer_reset_breaker()

    older = put(world.client, song, 5_000, client_updated_at=at(15))
    assert older.status_code == 409 and older.json()["current"]["position_ms"] == 150_000
    assert put(world.client, song, 1_000, client_updated_at=at(30)).status_code == 200  # starts over...
    again = put(world.client, song, 150_000, client_updated_at=at(40))  # ...and completes again
    assert again.status_code == 200 and again.json()["play_count"] == 2
    settle()

    assert rows() == [(me, song.pk, 150_000, True, 2, "phone")]
    assert listens() == [(me, song.pk, 1, "phone"), (me, song.pk, 2, "phone")]


def test_redis_killed_between_a_put_and_the_flush_keeps_the_acknowledged_position(world, redis_server):
    assert put(world.client, world.song, 150_000, client_updated_at=at(1)).status_code == 200
    assert rows() == []

    redis_server.kill()  # SIGKILL, before any flush
    redis_server.start()  # same folder: the append-only file is read back

    assert progress_buffer_flush() == 1
    assert rows() == [(world.listener.pk, world.song.pk, 150_000, True, 1, "phone")]
    assert listens() == [(world.listener.pk, world.song.pk, 1, "phone")]


def test_the_flush_task_waits_for_redis_when_it_is_unreachable(world, redis_server):
    put(world.client, world.song, 10_000)
    redis_server.kill()
    assert progress_buffer_flush_task() is None
    redis_server.start()
    assert progress_buffer_flush_task() == 1


def test_only_one_flush_runs_at_a_time(world):
    put(world.client, world.song, 10_000)
    holder = psycopg.connect(child_database_url(), autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [FLUSH_LOCK_ID])
        assert progress_buffer_flush() is None
        holder.execute("SELECT pg_advisory_unlock(%s)", [FLUSH_LOCK_ID])
    finally:
        holder.close()
    assert progress_buffer_flush() == 1


def test_a_flush_with_nothing_to_flush_is_one_redis_call_and_no_query(world, monkeypatch):
    put(world.client, world.song, 10_000)
    assert progress_buffer_flush() == 1
    client = buffer._client()
    commands: list[str] = []
    execute = client.execute_command

    def counted(*args, **options):
        commands.append(str(args[0]))
        return execute(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    with CaptureQueriesContext(connection) as queries:
        assert progress_buffer_flush() == 0
    assert [query["sql"] for query in queries.captured_queries] == []  # no advisory lock, no snapshot
    assert commands == ["SCARD"]
    assert REGISTRY.get_sample_value("revenge_progress_buffer_size") == 0


def test_beat_sends_the_flush_only_while_the_buffer_holds_something(world):
    """Due every interval while entries wait; with none, not due (one SCARD, no task) and asked again in one
    interval; due at once when an entry comes, since the last run's time did not move."""
    interval = WhileBuffered(5)
    last_run = timezone.now() - timedelta(seconds=6)
    assert tuple(interval.is_due(last_run)) == (False, 5)
    assert tuple(interval.is_due(timezone.now() - timedelta(seconds=2)))[0] is False  # not due by time either
    put(world.client, world.song, 10_000)
    assert tuple(interval.is_due(last_run)) == (True, 5)
    assert progress_buffer_flush() == 1
    assert tuple(interval.is_due(last_run)) == (False, 5)


def test_beat_sends_the_flush_when_redis_is_unreachable(world, redis_server):
    """The task then logs the outage and retries at the next interval (as before this schedule)."""
    redis_server.kill()
    try:
        assert tuple(WhileBuffered(5).is_due(timezone.now() - timedelta(seconds=6))) == (True, 5)
    finally:
        redis_server.start()


def test_beat_flushes_every_interval_and_closes_idle_sessions():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    entry = schedule["progress-buffer-flush"]
    assert entry == {
        "task": "apps.playback.tasks.progress_buffer_flush_task",
        "schedule": WhileBuffered(5),
        "options": {"expires": 10},
    }
    assert type(entry["schedule"]) is WhileBuffered and entry["schedule"].seconds == 5
    assert schedule["playback-sessions-close-idle"]["task"] == "apps.playback.tasks.playback_sessions_close_idle_task"


@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_and_a_flush_never_lose_or_double_anything(world):
    """Writers keep going while flushes run: every acknowledged final state reaches PostgreSQL."""
    tracks = [world.song, world.book, world.episode, world.long_song]
    errors: list[BaseException] = []

    def writer(track, offset):
        try:
            for step in range(1, 60):
                progress_record(user=world.listener, track_id=track.pk, position_ms=step * 3000,
                                device_id="phone", client_updated_at=None)  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(track, n)) for n, track in enumerate(tracks)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        progress_buffer_flush()
    for thread in threads:
        thread.join()
    settle()

    assert errors == []
    assert [row[2] for row in rows()] == [177_000] * 4
    assert listens() == [(world.listener.pk, world.song.pk, 1, "phone")]  # 100 s of the 200 s song


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_clean_worker_shutdown_flushes_the_buffer(world, process_env):
    put(world.client, world.book, 600_000, client_updated_at=at(1))
    assert rows() == []
    env = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "CACHE_KEY_PREFIX": django_settings.CACHES["default"]["KEY_PREFIX"],
    }
    queue = f"test-playback-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-Q", queue, "--pool=solo", "-l", "INFO"],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(worker.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(" ready." in line for line in output), timeout_s=60, what="worker ready", process=worker)
        assert rows() == []
        os.kill(worker.pid, signal.SIGTERM)  # warm shutdown
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    reader.join(timeout=5)

    assert rows() == [(world.listener.pk, world.book.pk, 600_000, False, 0, "phone")], "".join(output)
    assert buffer.buffer_dirty_count() == 0
