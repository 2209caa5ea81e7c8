"""Playback sessions: start (resume point, stream decision, chapters), heartbeats, end, idle closing."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.library.models import Chapter, LibraryKind, Track
from apps.playback.models import PlaybackSession
from apps.playback.services import sessions_close_idle
from apps.playback.tasks import playback_sessions_close_idle_task
from apps.streaming import services as streaming_services
from tests.audio import make_audio
from tests.conftest import broker_queue_messages
from tests.factories import LibraryAccessFactory, LibraryFactory
from tests.pipeline import scan
from tests.playback.conftest import at, put, settle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_mode")]


def start(client, track, device_id="phone", **extra):
    return client.post("/api/v1/sessions", {"track": track.pk, "device_id": device_id, **extra}, format="json")


def sessions_state() -> list[tuple]:
    return list(
        PlaybackSession.objects.order_by("id").values_list(
            "user_id", "track_id", "device_id", "state", "position_ms", "listened_ms", "ended_at"
        )
    )


def test_a_session_resumes_where_the_user_left_off_with_chapters(world):
    Chapter.objects.bulk_create(
        [
            Chapter(track=world.book, index=0, title="Opening", start_ms=0, end_ms=1_800_000),
            Chapter(track=world.book, index=1, title="Ending", start_ms=1_800_000, end_ms=3_600_000),
        ]
    )
    put(world.client, world.book, 600_000, device_id="laptop")

    response = start(world.client, world.book)

    assert response.status_code == 201, response.content
    body = response.json()
    session = PlaybackSession.objects.get()
    assert body["id"] == session.pk
    assert body["resume_position_ms"] == 600_000
    assert body["chapters"] == [
        {"index": 0, "title": "Opening", "start_ms": 0, "end_ms": 1_800_000},
        {"index": 1, "title": "Ending", "start_ms": 1_800_000, "end_ms": 3_600_000},
    ]
    assert body["stream"]["mode"] == "hls"  # no file on disk here: see the test with a real file
    assert (session.device_id, session.state, session.position_ms, session.ended_at) == (
        "phone",
        "playing",
        600_000,
        None,
    )


def test_no_resume_point_for_a_new_a_completed_or_an_almost_finished_track(world, settings):
    assert start(world.client, world.song).json()["resume_position_ms"] is None
    put(world.client, world.song, 150_000)
    assert start(world.client, world.song).json()["resume_position_ms"] is None  # completed
    settings.PROGRESS_COMPLETION = {**settings.PROGRESS_COMPLETION, "audiobook": {"percent": 100, "after_ms": None}}
    put(world.client, world.book, 3_420_000)  # 95 %: not completed, but within the last 5 %
    assert start(world.client, world.book).json()["resume_position_ms"] is None
    put(world.client, world.book, 3_419_000)
    assert start(world.client, world.book).json()["resume_position_ms"] == 3_419_000


def test_the_stream_decision_of_a_real_file(world, tmp_path):
    make_audio(tmp_path / "real" / "tone.mp3", seconds=1, tags={"title": "Tone"})
    library = LibraryFactory(root=tmp_path / "real", kind=LibraryKind.MUSIC, name="Real")
    scan(library)
    LibraryAccessFactory(user=world.listener, library=library)
    track = Track.objects.get(library=library)

    def starts() -> float:
        return REGISTRY.get_sample_value("revenge_stream_starts_total", {"mode": "direct"}) or 0

    before = starts()
    body = start(world.client, track, codecs=["mp3", "aac"], max_bitrate=320).json()

    assert starts() == before + 1  # a session start is a stream start
    assert body["stream"]["mode"] == "direct"
    assert body["stream"]["url"].startswith(f"/api/v1/tracks/{track.pk}/file?token=")
    assert body["chapters"] == []


def test_a_session_resumed_deep_in_a_long_book_has_its_chunk_made_first(
    world, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.TRANSCODE_CHUNK_SECONDS = 30  # 100 s: four chunks of ~30 s
    settings.STREAMING_PROFILES = ["aac-64"]
    make_audio(tmp_path / "long" / "book.mp3", seconds=100, tags={"title": "Long"})
    library = LibraryFactory(root=tmp_path / "long", kind=LibraryKind.AUDIOBOOK, name="Long")
    scan(library)
    LibraryAccessFactory(user=world.listener, library=library)
    track = Track.objects.get(library=library)
    assert put(world.client, track, 70_000, client_updated_at=at(1)).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        body = start(world.client, track, codecs=["aac"]).json()  # no MP3: HLS, which is not made yet

    assert body["resume_position_ms"] == 70_000 and body["stream"]["mode"] == "hls"
    queued = broker_queue_messages(streaming_services.INTERACTIVE_QUEUE)
    firsts = [json.loads(base64.b64decode(m["body"]))[1] for m in queued]
    # The chunk holding 1:10 (the third), then the one after it; the beginning comes last.
    assert sorted((kwargs["position"], kwargs["order"]) for kwargs in firsts) == [(0, [2, 3, 0, 1]), (1, [2, 3, 0, 1])]


def test_starting_again_on_a_device_ends_its_previous_session_and_the_list_shows_every_device(
    world, django_assert_max_num_queries
):
    first = start(world.client, world.book).json()["id"]
    second = start(world.client, world.song).json()["id"]
    start(world.client, world.episode, device_id="car")
    start(world.other_client, world.book, device_id="their phone")

    with django_assert_max_num_queries(3):
        listed = world.client.get("/api/v1/sessions").json()

    assert [(row["device_id"], row["track"]["title"]) for row in listed["results"]] == [
        ("car", "Episode"),
        ("phone", "Song"),
    ]
    assert PlaybackSession.objects.get(pk=first).ended_at is not None
    assert PlaybackSession.objects.get(pk=second).ended_at is None


def test_heartbeats_move_the_progress_and_add_up_the_time_listened(world):
    session_id = start(world.client, world.book).json()["id"]
    url = f"/api/v1/sessions/{session_id}"
    PlaybackSession.objects.filter(pk=session_id).update(last_seen_at=timezone.now() - timedelta(seconds=30))

    beat = world.client.patch(url, {"position_ms": 30_000, "state": "playing"}, format="json")

    assert beat.status_code == 200, beat.content
    assert (beat.json()["position_ms"], beat.json()["listened_ms"]) == (30_000, 30_000)
    assert world.client.get(f"/api/v1/progress/{world.book.pk}").json()["position_ms"] == 30_000
    # A seek forward is not listening: at most the wall-clock time since the last heartbeat (+2 s).
    seek = world.client.patch(url, {"position_ms": 1_830_000, "state": "paused"}, format="json").json()
    assert 30_000 <= seek["listened_ms"] <= 32_500
    PlaybackSession.objects.filter(pk=session_id).update(last_seen_at=timezone.now() - timedelta(seconds=60))
    paused = world.client.patch(url, {"position_ms": 1_890_000, "state": "playing"}, format="json").json()
    assert paused["listened_ms"] == seek["listened_ms"]  # it was paused meanwhile
    assert world.client.get(url).json()["state"] == "playing"
    settle()


def test_a_stale_heartbeat_is_409_and_changes_nothing(world):
    session_id = start(world.client, world.book).json()["id"]
    put(world.client, world.book, 900_000, device_id="laptop", client_updated_at=at(100))
    before = sessions_state()

    response = world.client.patch(
        f"/api/v1/sessions/{session_id}",
        {"position_ms": 10_000, "state": "playing", "client_updated_at": at(50)},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["current"]["device_id"] == "laptop"
    assert sessions_state() == before
    assert world.client.get(f"/api/v1/progress/{world.book.pk}").json()["position_ms"] == 900_000


def test_ending_a_session(world):
    session_id = start(world.client, world.song).json()["id"]

    assert world.client.delete(f"/api/v1/sessions/{session_id}").status_code == 204
    assert world.client.get("/api/v1/sessions").json()["count"] == 0
    late = world.client.patch(f"/api/v1/sessions/{session_id}", {"position_ms": 1, "state": "playing"}, format="json")
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "session_ended"
    assert world.client.delete(f"/api/v1/sessions/{session_id}").status_code == 204  # already ended: fine


def test_another_users_session_and_ungranted_tracks_are_404(world):
    session_id = start(world.client, world.song).json()["id"]
    before = sessions_state()
    url = f"/api/v1/sessions/{session_id}"

    assert world.other_client.get(url).status_code == 404
    assert world.other_client.patch(url, {"position_ms": 5, "state": "paused"}, format="json").status_code == 404
    assert world.other_client.delete(url).status_code == 404
    assert start(world.client, world.secret).status_code == 404
    assert sessions_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"track": "x", "device_id": "phone"}, "track"),
        ({"device_id": "phone"}, "track"),
        ({"track": 1, "device_id": ""}, "device_id"),
        ({"track": 1, "device_id": "phone", "codecs": "mp3"}, "codecs"),
        ({"track": 1, "device_id": "phone", "max_bitrate": "320"}, "max_bitrate"),
        ({"track": 1, "device_id": "phone", "max_bitrate": 0}, "max_bitrate"),
        # What the stream decision refuses is refused here too, not handed out as a URL that fails.
        ({"track": 1, "device_id": "phone", "max_bitrate": 8}, "max_bitrate"),
        ({"track": 1, "device_id": "phone", "codecs": ["mp4a"]}, "codecs"),
        ({"track": 1, "device_id": "phone", "codecs": []}, "codecs"),
    ],
)
def test_bad_session_starts_are_400(world, body, field):
    response = world.client.post("/api/v1/sessions", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not PlaybackSession.objects.exists()


def test_idle_sessions_are_closed_by_beat(world, settings):
    settings.PLAYBACK_SESSION_IDLE_TIMEOUT_S = 600
    idle = start(world.client, world.song).json()["id"]
    alive = start(world.client, world.book, device_id="laptop").json()["id"]
    PlaybackSession.objects.filter(pk=idle).update(last_seen_at=timezone.now() - timedelta(seconds=601))

    assert playback_sessions_close_idle_task() == 1
    assert sessions_close_idle() == 0

    idle_row, alive_row = PlaybackSession.objects.get(pk=idle), PlaybackSession.objects.get(pk=alive)
    assert (idle_row.state, idle_row.ended_at is not None) == ("stopped", True)
    assert (alive_row.state, alive_row.ended_at) == ("playing", None)
