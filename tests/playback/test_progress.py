"""Progress rules through the API, in both write modes (buffered through Redis, and direct)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.http import Http404
from django.utils import timezone
from rest_framework.test import APIClient

from apps.library.models import Track
from apps.playback import selectors
from apps.playback.models import Listen, PlaybackProgress
from apps.playback.progress import buffer
from apps.playback.progress.store import progress_output, progress_output_unplayed
from apps.playback.serializers import ProgressOutput
from tests.factories import LibraryAccessFactory
from tests.playback.conftest import T0, at, make_user, put, settle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_mode")]


def stored(world, track):
    """What a device reads back (the buffer first), without the server-side timestamps."""
    body = world.client.get(f"/api/v1/progress/{track.pk}").json()
    return {key: value for key, value in body.items() if key not in ("updated_at",)}


def nothing_stored(world) -> bool:
    settle()
    return not PlaybackProgress.objects.exists() and not Listen.objects.exists()


def test_put_stores_the_position_and_get_reads_it_back(world):
    response = put(world.client, world.book, 600_000, client_updated_at=at(0), state="paused")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body.pop("updated_at") is not None
    assert body == {
        "track_id": world.book.pk,
        "position_ms": 600_000,
        "duration_ms": 3_600_000,
        "progress": 0.1667,
        "completed": False,
        "play_count": 0,
        "device_id": "phone",
        "state": "paused",
        "client_updated_at": "2025-05-01T12:00:00Z",
    }
    assert stored(world, world.book) == {**body}
    settle()
    row = PlaybackProgress.objects.get()
    assert (row.user_id, row.track_id, row.position_ms, row.device_id, row.client_updated_at) == (
        world.listener.pk, world.book.pk, 600_000, "phone", T0,
    )  # fmt: skip


def test_a_track_never_played_reads_as_zero(world):
    assert world.client.get(f"/api/v1/progress/{world.song.pk}").json() == {
        "track_id": world.song.pk,
        "position_ms": 0,
        "duration_ms": 200_000,
        "progress": 0.0,
        "completed": False,
        "play_count": 0,
        "device_id": None,
        "state": "stopped",
        "client_updated_at": None,
        "updated_at": None,
    }


@pytest.mark.parametrize(
    ("position", "message"),
    [
        (-1, "Ensure this value is greater than or equal to 0."),
        ("1000", "A JSON integer is required."),
        ("12.5", "A JSON integer is required."),
        (12.5, "A JSON integer is required."),
        (1000.0, "A JSON integer is required."),
        (True, "A JSON integer is required."),
        (None, "This field may not be null."),
        (2**63, "Ensure this value is less than or equal to 9223372036854775807."),
        (2**70, "Ensure this value is less than or equal to 9223372036854775807."),
        (202_001, "Ensure this value is less than or equal to 202000 (the track's end)."),
    ],
)
def test_bad_positions_are_400_and_nothing_is_stored(world, position, message):
    response = put(world.client, world.song, position)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"position_ms": [message]}
    assert nothing_stored(world)


def test_a_position_up_to_two_seconds_past_the_end_is_accepted(world):
    assert put(world.client, world.song, 202_000).json()["position_ms"] == 202_000


def test_nan_is_not_json_and_is_refused(world):
    response = world.client.put(
        f"/api/v1/progress/{world.song.pk}",
        '{"position_ms": NaN, "device_id": "phone"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert nothing_stored(world)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "This field is required."),
        ({"device_id": ""}, "This field may not be blank."),
        ({"device_id": "   "}, "This field may not be blank."),
        ({"device_id": "x" * 10_000}, "Ensure this field has no more than 64 characters."),
        ({"device_id": "x" * 65}, "Ensure this field has no more than 64 characters."),
        ({"device_id": "tab\there"}, "Only printable characters."),
        ({"device_id": "nul\x00"}, "Only printable characters."),
        ({"device_id": 12}, "Not a valid string."),
    ],
)
def test_bad_device_ids_are_400(world, body, message):
    response = world.client.put(f"/api/v1/progress/{world.song.pk}", {"position_ms": 1000, **body}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"device_id": [message]}
    assert nothing_stored(world)


def test_a_64_character_device_id_is_fine(world):
    assert put(world.client, world.song, 1000, device_id="é" * 64).json()["device_id"] == "é" * 64


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "Expected an RFC 3339 time with a time zone or integer epoch milliseconds."),
        ("2025-13-01T00:00:00Z", "Expected an RFC 3339 time with a time zone or integer epoch milliseconds."),
        ("2025-05-01T12:00:00", "Expected an RFC 3339 time with a time zone or integer epoch milliseconds."),
        (1.7e12, "Expected an RFC 3339 time with a time zone or integer epoch milliseconds."),
        (True, "Expected an RFC 3339 time with a time zone or integer epoch milliseconds."),
        ("1999-12-31T23:59:59Z", "Expected a time after 2000-01-01."),
        (0, "Expected a time after 2000-01-01."),
        (10**20, "Expected a time after 2000-01-01."),
        ("9999-12-31T23:59:59-23:59", "Expected a time after 2000-01-01."),  # past datetime.max in UTC
    ],
)
def test_malformed_client_times_are_400(world, value, message):
    response = put(world.client, world.song, 1000, client_updated_at=value)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"client_updated_at": [message]}
    assert nothing_stored(world)


def test_client_time_may_be_epoch_milliseconds_or_carry_an_offset(world):
    epoch_ms = int(T0.timestamp() * 1000) + 250
    assert put(world.client, world.song, 1000, client_updated_at=epoch_ms).json()["client_updated_at"] == (
        "2025-05-01T12:00:00.250000Z"
    )
    later = put(world.client, world.song, 2000, client_updated_at="2025-05-01T14:00:01+02:00")
    assert later.json()["client_updated_at"] == "2025-05-01T12:00:01Z"


def test_a_client_time_in_the_future_is_clamped_to_now(world):
    before = timezone.now()
    body = put(world.client, world.song, 1000, client_updated_at="2999-01-01T00:00:00Z").json()
    after = timezone.now()

    clamped = datetime.fromisoformat(body["client_updated_at"])
    assert before <= clamped <= after
    # ...so the fast clock does not lock out a device with a correct one.
    assert put(world.client, world.song, 2000, device_id="laptop").status_code == 200


def test_unknown_and_ungranted_tracks_are_404_and_nothing_is_stored(world):
    for track_id in (world.secret.pk, 999_999):
        response = world.client.put(
            f"/api/v1/progress/{track_id}", {"position_ms": 1000, "device_id": "phone"}, format="json"
        )
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
        assert world.client.get(f"/api/v1/progress/{track_id}").status_code == 404
    assert nothing_stored(world)


def test_an_older_update_is_409_with_the_current_state_and_changes_nothing(world):
    put(world.client, world.book, 600_000, device_id="phone", client_updated_at=at(60))

    response = put(world.client, world.book, 300_000, device_id="laptop", client_updated_at=at(30))

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == {
        "code": "stale",
        "message": "A newer update is stored: this device is behind. `current` is the stored state.",
    }
    assert (body["current"]["position_ms"], body["current"]["device_id"]) == (600_000, "phone")
    assert stored(world, world.book)["position_ms"] == 600_000
    settle()
    assert PlaybackProgress.objects.get().position_ms == 600_000


def test_the_same_update_again_is_a_harmless_replay_but_another_at_the_same_time_is_stale(world):
    first = put(world.client, world.song, 150_000, client_updated_at=at(0))
    again = put(world.client, world.song, 150_000, client_updated_at=at(0))
    rival = put(world.client, world.song, 20_000, device_id="laptop", client_updated_at=at(0))

    assert (first.status_code, again.status_code, rival.status_code) == (200, 200, 409)
    assert again.json() == first.json()
    settle()
    assert PlaybackProgress.objects.get().play_count == 1
    assert Listen.objects.count() == 1


def test_music_counts_once_at_half_and_again_after_a_new_play_through(world):
    def send(position, second):
        response = put(world.client, world.song, position, client_updated_at=at(second))
        assert response.status_code == 200, response.content
        return response.json()

    assert send(0, 0)["play_count"] == 0  # a play is never counted at its start
    assert (send(99_999, 100)["completed"], send(99_999, 100)["play_count"]) == (False, 0)
    assert (send(100_000, 101)["completed"], send(100_000, 101)["play_count"]) == (True, 1)
    assert send(150_000, 150)["play_count"] == 1  # still the same play-through
    assert send(200_000, 200)["play_count"] == 1
    restarted = send(5_000, 205)  # from the start again
    assert (restarted["completed"], restarted["play_count"]) == (False, 1)
    assert send(120_000, 320)["play_count"] == 2

    settle()
    listens = list(Listen.objects.order_by("play_number").values_list("play_number", "position_ms", "listened_at"))
    assert listens == [(1, 100_000, T0 + timedelta(seconds=101)), (2, 120_000, T0 + timedelta(seconds=320))]
    assert PlaybackProgress.objects.get().play_count == 2


def test_music_counts_after_four_minutes_of_a_long_track(world):
    assert put(world.client, world.long_song, 239_999, client_updated_at=at(1)).json()["completed"] is False
    assert put(world.client, world.long_song, 240_000, client_updated_at=at(2)).json()["play_count"] == 1


@pytest.mark.parametrize(("track_name", "threshold"), [("book", 3_240_000), ("episode", 900_000)])
def test_audiobooks_and_podcasts_count_at_ninety_percent(world, track_name, threshold):
    track = getattr(world, track_name)
    assert put(world.client, track, threshold - 1, client_updated_at=at(1)).json()["completed"] is False
    done = put(world.client, track, threshold, client_updated_at=at(2)).json()
    assert (done["completed"], done["play_count"]) == (True, 1)
    settle()
    assert Listen.objects.get().track_id == track.pk


def test_thresholds_come_from_settings(world, settings):
    settings.PROGRESS_COMPLETION = {**settings.PROGRESS_COMPLETION, "audiobook": {"percent": 50, "after_ms": None}}
    assert put(world.client, world.book, 1_800_000).json()["completed"] is True


def test_reset_goes_back_to_the_start_keeps_the_count_and_a_new_play_through_counts(world):
    put(world.client, world.song, 150_000, client_updated_at=at(0))

    response = world.client.delete(f"/api/v1/progress/{world.song.pk}?device_id=laptop")

    assert response.status_code == 200
    body = response.json()
    assert (body["position_ms"], body["completed"], body["play_count"], body["device_id"]) == (0, False, 1, "laptop")
    assert put(world.client, world.song, 110_000).json()["play_count"] == 2
    settle()
    assert Listen.objects.count() == 2


def test_mark_played_counts_once_and_unplayed_resets(world):
    played = world.client.post(f"/api/v1/tracks/{world.book.pk}/played")
    again = world.client.post(f"/api/v1/tracks/{world.book.pk}/played")
    unplayed = world.client.delete(f"/api/v1/tracks/{world.book.pk}/played")

    assert played.status_code == again.status_code == unplayed.status_code == 200
    assert (played.json()["completed"], played.json()["position_ms"], played.json()["play_count"]) == (
        True, 3_600_000, 1,
    )  # fmt: skip
    assert again.json()["play_count"] == 1
    assert (unplayed.json()["completed"], unplayed.json()["position_ms"], unplayed.json()["play_count"]) == (
        False, 0, 1,
    )  # fmt: skip
    settle()
    assert list(Listen.objects.values_list("play_number", "device_id")) == [(1, "server")]
    assert world.client.post(f"/api/v1/tracks/{world.secret.pk}/played").status_code == 404
    assert world.client.delete(f"/api/v1/progress/{world.secret.pk}").status_code == 404
    assert PlaybackProgress.objects.filter(track=world.secret).count() == 0


def test_progress_is_private_per_user(world):
    put(world.client, world.book, 600_000)

    theirs = world.other_client.get(f"/api/v1/progress/{world.book.pk}").json()
    assert (theirs["position_ms"], theirs["device_id"]) == (0, None)
    assert world.other_client.get("/api/v1/progress").json()["count"] == 0
    assert put(world.other_client, world.book, 60_000, client_updated_at=at(-3600)).status_code == 200
    assert stored(world, world.book)["position_ms"] == 600_000


def test_continue_listening_is_newest_first_with_tracks_and_no_n_plus_one(world, django_assert_max_num_queries):
    put(world.client, world.book, 600_000, client_updated_at=at(0))
    put(world.client, world.episode, 100_000, client_updated_at=at(1))
    put(world.client, world.song, 150_000, client_updated_at=at(2))  # completed: not "in progress"
    put(world.client, world.long_song, 0, client_updated_at=at(3))  # not started
    settle()
    put(world.client, world.episode, 200_000, client_updated_at=at(4))  # newest, and still in the buffer

    with django_assert_max_num_queries(5):
        response = world.client.get("/api/v1/progress?state=in_progress")

    body = response.json()
    assert body["count"] == 2
    assert [(row["track"]["title"], row["progress"]["position_ms"]) for row in body["results"]] == [
        ("Episode", 200_000),
        ("Book", 600_000),
    ]
    assert body["results"][1]["track"] == {
        "id": world.book.pk,
        "library": world.book.library_id,
        "album": None,
        "title": "Book",
        "artists": ["Book artist"],
        "album_artist": "",
        "album_artists": [],
        "genres": [],
        "disc_number": None,
        "disc_subtitle": "",
        "track_number": None,
        "year": None,
        "published_at": None,
        "duration_ms": 3_600_000,
        "favourite_at": None,
        "rating": None,
        "cover": None,
    }
    page = world.client.get("/api/v1/progress?state=in_progress&page_size=1&page=2").json()
    assert [row["track"]["title"] for row in page["results"]] == ["Book"]
    everything = world.client.get("/api/v1/progress").json()
    assert [row["track"]["title"] for row in everything["results"]] == ["Episode", "Long song", "Song", "Book"]


def test_since_returns_every_change_after_it_oldest_first(world):
    put(world.client, world.book, 600_000)
    settle()
    mark = world.client.get(f"/api/v1/progress/{world.book.pk}").json()["updated_at"]
    put(world.client, world.song, 10_000)
    settle()
    put(world.client, world.episode, 20_000)  # still in the buffer in buffered mode

    response = world.client.get("/api/v1/progress", {"since": mark})

    assert response.status_code == 200
    body = response.json()
    assert [row["track"]["title"] for row in body["results"]] == ["Song", "Episode"]
    assert body["next_since"] == body["results"][-1]["progress"]["updated_at"]
    assert world.client.get("/api/v1/progress", {"since": body["next_since"]}).json()["results"] == []
    epoch_ms = int(datetime.fromisoformat(mark).timestamp() * 1000) - 1
    assert len(world.client.get("/api/v1/progress", {"since": str(epoch_ms)}).json()["results"]) == 3
    bad = world.client.get("/api/v1/progress", {"since": "last week"})
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["since"]


def test_batch_judges_each_update_and_a_replay_changes_nothing(world):
    updates = [
        {"track": world.song.pk, "position_ms": 50_000, "device_id": "car", "client_updated_at": at(10)},
        {"track": world.song.pk, "position_ms": 120_000, "device_id": "car", "client_updated_at": at(70)},
        {"track": world.book.pk, "position_ms": 99_999_999, "device_id": "car"},
        {"track": world.secret.pk, "position_ms": 1000, "device_id": "car"},
        {"track": world.episode.pk, "position_ms": "12", "device_id": "car"},
        "not an object",
        {"track": world.episode.pk, "position_ms": 1000, "device_id": "car", "client_updated_at": at(5)},
    ]
    put(world.client, world.episode, 5000, client_updated_at=at(6))

    response = world.client.post("/api/v1/progress/batch", {"updates": updates}, format="json")

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["track"], r["status"]) for r in results] == [
        (world.song.pk, 200),
        (world.song.pk, 200),
        (world.book.pk, 400),
        (world.secret.pk, 404),
        (world.episode.pk, 400),
        (None, 400),
        (world.episode.pk, 409),
    ]
    assert results[1]["progress"]["play_count"] == 1
    assert results[2]["error"]["fields"] == {
        "position_ms": ["Ensure this value is less than or equal to 3602000 (the track's end)."]
    }
    assert results[4]["error"]["fields"] == {"position_ms": ["A JSON integer is required."]}
    assert results[6]["current"]["position_ms"] == 5000

    replay = world.client.post("/api/v1/progress/batch", {"updates": updates}, format="json").json()["results"]
    assert [r["status"] for r in replay] == [409, 200, 400, 404, 400, 400, 409]
    settle()
    assert PlaybackProgress.objects.get(track=world.song).play_count == 1
    assert Listen.objects.count() == 1
    assert world.client.post("/api/v1/progress/batch", {"updates": []}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_two_devices_racing_each_get_a_consistent_answer_and_the_newest_wins(world):
    answers: dict[str, list[int]] = {"phone": [], "laptop": []}
    failures: list[tuple] = []
    barrier = threading.Barrier(2)

    def device(name: str, offset_ms: int) -> None:
        client = APIClient()
        client.force_authenticate(world.listener)
        barrier.wait()
        try:
            for step in range(25):
                stamp = T0 + timedelta(milliseconds=step * 10 + offset_ms)
                response = put(client, world.book, 1_000 * step + offset_ms, device_id=name,
                               client_updated_at=stamp.isoformat())  # fmt: skip
                answers[name].append(response.status_code)
                if response.status_code == 409:  # what it is told is newer than what it sent
                    current = datetime.fromisoformat(response.json()["current"]["client_updated_at"])
                    if current <= stamp:
                        failures.append((name, step, current))
        finally:
            connection.close()

    threads = [threading.Thread(target=device, args=("phone", 0)), threading.Thread(target=device, args=("laptop", 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(answers["phone"]) == len(answers["laptop"]) == 25
    assert set(answers["phone"] + answers["laptop"]) <= {200, 409}
    assert answers["laptop"][-1] == 200  # the newest update of all
    final = stored(world, world.book)
    assert (final["position_ms"], final["device_id"]) == (24_005, "laptop")
    settle()
    assert PlaybackProgress.objects.get().position_ms == 24_005


def test_updates_are_counted_by_result(world):
    from prometheus_client import REGISTRY

    def count(result):
        return REGISTRY.get_sample_value("revenge_progress_updates_total", {"result": result}) or 0

    before = {result: count(result) for result in ("ok", "stale", "invalid")}
    put(world.client, world.song, 1000, client_updated_at=at(10))
    put(world.client, world.song, 1000, client_updated_at=at(5))
    put(world.client, world.song, -5)
    put(world.client, world.song, 999_999)

    assert {result: count(result) - before[result] for result in before} == {"ok": 1, "stale": 1, "invalid": 2}


def test_buffered_writes_are_read_back_before_the_flush(world, write_mode):
    put(world.client, world.song, 42_000)

    if write_mode == "buffered":
        assert not PlaybackProgress.objects.exists()
        assert buffer.buffer_dirty_count() == 1
    else:
        assert PlaybackProgress.objects.get().position_ms == 42_000
    assert stored(world, world.song)["position_ms"] == 42_000


def test_the_progress_scope_is_the_library_scope(world):
    """track_for_progress is Track.objects.visible_to in one statement: both must agree."""
    staff = make_user(is_staff=True)
    inactive = make_user(is_active=False)
    LibraryAccessFactory(user=inactive, library=world.song.library)
    every_track = [world.song, world.long_song, world.book, world.episode, world.secret]

    for user in (world.listener, staff, inactive):
        visible = set(Track.objects.visible_to(user).values_list("pk", flat=True))
        reachable = set()
        for track in every_track:
            try:
                selectors.track_for_progress(user=user, track_id=track.pk)
                reachable.add(track.pk)
            except Http404:
                pass
        assert reachable == visible, user
    assert len(set(Track.objects.visible_to(staff).values_list("pk", flat=True))) == 5
    for track_id in (0, -1, 2**63):
        with pytest.raises(Http404):
            selectors.track_for_progress(user=staff, track_id=track_id)


def test_the_fast_progress_renderer_matches_the_serializer(world):
    body = put(world.client, world.song, 123_456, client_updated_at="2025-05-01T12:00:00.000250Z").json()
    _, state = selectors.progress_get(user=world.listener, track_id=world.song.pk)

    assert progress_output(state) == ProgressOutput(state).data == body


def test_a_never_played_answer_has_the_shape_of_every_other_progress_answer(world):
    """The unplayed answer is written out apart from the state's (it has no state): same fields, same order."""
    body = world.client.get(f"/api/v1/progress/{world.song.pk}").json()

    assert list(body) == list(ProgressOutput().fields) == list(progress_output_unplayed(track_id=1, duration_ms=1))


@pytest.mark.parametrize("since", ["²", "9999-12-31T23:59:59-23:59", "yesterday"])
def test_a_malformed_since_is_400(world, since):
    response = world.client.get("/api/v1/progress", {"since": since})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["since"]
