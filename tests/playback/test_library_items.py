"""Bookmarks, play queues, listening history and the read-only admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.playback.models import MAX_QUEUE_TRACKS, Bookmark, Listen, PlayQueue
from tests.playback.conftest import at, make_user, put, settle

pytestmark = pytest.mark.django_db


def bookmarks() -> list[tuple]:
    return list(Bookmark.objects.order_by("id").values_list("user_id", "track_id", "position_ms", "note"))


def test_bookmarks_are_created_listed_edited_and_deleted(world):
    url = f"/api/v1/tracks/{world.book.pk}/bookmarks"
    created = world.client.post(url, {"position_ms": 90_000, "note": "the twist"}, format="json")
    world.client.post(url, {"position_ms": 30_000}, format="json")

    assert created.status_code == 201, created.content
    bookmark_id = created.json()["id"]
    listed = world.client.get(url).json()["results"]
    assert [(b["position_ms"], b["note"]) for b in listed] == [(30_000, ""), (90_000, "the twist")]
    edited = world.client.patch(f"/api/v1/bookmarks/{bookmark_id}", {"note": "the big twist"}, format="json")
    assert (edited.status_code, edited.json()["note"], edited.json()["position_ms"]) == (200, "the big twist", 90_000)
    assert world.client.delete(f"/api/v1/bookmarks/{bookmark_id}").status_code == 204
    assert bookmarks() == [(world.listener.pk, world.book.pk, 30_000, "")]


def test_bookmarks_are_private_and_validated(world):
    mine = world.client.post(f"/api/v1/tracks/{world.book.pk}/bookmarks", {"position_ms": 1000}, format="json")
    before = bookmarks()
    url = f"/api/v1/bookmarks/{mine.json()['id']}"

    assert world.other_client.patch(url, {"note": "mine now"}, format="json").status_code == 404
    assert world.other_client.delete(url).status_code == 404
    assert world.other_client.get(f"/api/v1/tracks/{world.book.pk}/bookmarks").json()["count"] == 0
    assert world.client.get(f"/api/v1/tracks/{world.secret.pk}/bookmarks").status_code == 404
    assert (
        world.client.post(f"/api/v1/tracks/{world.secret.pk}/bookmarks", {"position_ms": 1}, format="json").status_code
        == 404
    )
    for body in ({"position_ms": -1}, {"position_ms": "5"}, {"position_ms": 3_602_001}, {"note": "x"}):
        response = world.client.post(f"/api/v1/tracks/{world.book.pk}/bookmarks", body, format="json")
        assert response.status_code == 400, body
        assert list(response.json()["error"]["fields"]) == ["position_ms"]
    too_long = world.client.patch(url, {"note": "x" * 1001}, format="json")
    assert (too_long.status_code, list(too_long.json()["error"]["fields"])) == (400, ["note"])
    assert bookmarks() == before


def test_a_play_queue_is_saved_and_restored_per_device(world):
    ids = [world.song.pk, world.book.pk, world.episode.pk]
    saved = world.client.put(
        "/api/v1/queue?device_id=phone",
        {"track_ids": ids, "current_index": 1, "position_ms": 42_000, "shuffle": True, "repeat": "all"},
        format="json",
    )
    world.client.put("/api/v1/queue?device_id=car", {"track_ids": [world.song.pk]}, format="json")

    assert saved.status_code == 200, saved.content
    restored = world.client.get("/api/v1/queue?device_id=phone").json()
    assert {key: restored[key] for key in ("device_id", "track_ids", "current_index", "position_ms", "shuffle")} == {
        "device_id": "phone", "track_ids": ids, "current_index": 1, "position_ms": 42_000, "shuffle": True,
    }  # fmt: skip
    assert restored["repeat"] == "all"
    assert world.client.get("/api/v1/queue").json()["device_id"] == "car"  # the last saved, from any device
    # Saving again replaces it.
    world.client.put("/api/v1/queue?device_id=phone", {"track_ids": [world.episode.pk]}, format="json")
    assert world.client.get("/api/v1/queue?device_id=phone").json()["track_ids"] == [world.episode.pk]
    assert PlayQueue.objects.filter(user=world.listener).count() == 2


def test_a_queue_keeps_only_tracks_the_user_may_still_see(world):
    world.client.put(
        "/api/v1/queue?device_id=phone",
        {"track_ids": [world.song.pk, world.book.pk, world.episode.pk], "current_index": 2},
        format="json",
    )
    world.book.library.accesses.filter(user=world.listener).delete()

    restored = world.client.get("/api/v1/queue?device_id=phone").json()

    assert (restored["track_ids"], restored["current_index"]) == ([world.song.pk, world.episode.pk], 1)


def test_bad_queues_are_400_and_other_users_queues_are_not_reachable(world):
    world.client.put("/api/v1/queue?device_id=phone", {"track_ids": [world.song.pk]}, format="json")
    before = list(PlayQueue.objects.values_list("track_ids", flat=True))
    cases = [
        ("", {"track_ids": [world.song.pk]}, "device_id"),
        ("?device_id=phone", {"track_ids": [world.secret.pk, 999_999]}, "track_ids"),
        ("?device_id=phone", {"track_ids": ["1"]}, "track_ids"),
        ("?device_id=phone", {"track_ids": [world.song.pk], "current_index": 1}, "current_index"),
        ("?device_id=phone", {"track_ids": [world.song.pk] * (MAX_QUEUE_TRACKS + 1)}, "track_ids"),
        ("?device_id=phone", {"track_ids": [world.song.pk], "repeat": "forever"}, "repeat"),
        ("?device_id=phone", {"track_ids": [world.song.pk], "position_ms": 202_001}, "position_ms"),
    ]
    for query, body, field in cases:
        response = world.client.put(f"/api/v1/queue{query}", body, format="json")
        assert response.status_code == 400, (query, body)
        assert list(response.json()["error"]["fields"]) == [field]
    unknown = world.client.put(
        "/api/v1/queue?device_id=phone", {"track_ids": [world.secret.pk, 999_999]}, format="json"
    )
    assert unknown.json()["error"]["fields"]["track_ids"] == [f"No such tracks: {world.secret.pk}, 999999."]
    assert list(PlayQueue.objects.values_list("track_ids", flat=True)) == before
    # Another user asking for "phone" gets their own (empty) queue, never this one.
    for query in ("?device_id=phone", ""):
        response = world.other_client.get(f"/api/v1/queue{query}")
        assert (response.status_code, response.json()["track_ids"]) == (200, []), query


EMPTY_QUEUE = {
    "track_ids": [],
    "current_index": 0,
    "position_ms": 0,
    "shuffle": False,
    "repeat": "off",
    "updated_at": None,
}


def test_a_device_that_never_saved_a_queue_has_an_empty_one(world, django_assert_max_num_queries):
    # Issue 14: a new browser's first page asked for its queue and got a 404 logged in the console.
    with django_assert_max_num_queries(1):
        response = world.client.get("/api/v1/queue?device_id=Chrome on Linux · 1a2b3c")

    assert response.status_code == 200, response.content
    assert response.json() == {"device_id": "Chrome on Linux · 1a2b3c", **EMPTY_QUEUE}
    assert world.client.get("/api/v1/queue").json() == {"device_id": None, **EMPTY_QUEUE}
    assert PlayQueue.objects.count() == 0  # reading saved nothing


def test_the_schema_documents_the_empty_queue(client):
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    output = schema["components"]["schemas"]["QueueOutput"]
    assert output["properties"]["updated_at"]["nullable"] is True
    assert output["properties"]["device_id"]["nullable"] is True
    assert "empty" in output["description"]
    assert "404" not in schema["paths"]["/api/v1/queue"]["get"]["responses"]


@pytest.mark.usefixtures("write_mode")
def test_listens_are_the_history_newest_first_without_n_plus_one(world, write_mode, django_assert_max_num_queries):
    put(world.client, world.song, 150_000, client_updated_at=at(1))
    put(world.client, world.episode, 950_000, client_updated_at=at(2), device_id="car")
    put(world.client, world.song, 0, client_updated_at=at(3))
    put(world.client, world.song, 110_000, client_updated_at=at(4))
    put(world.other_client, world.book, 3_500_000)

    with django_assert_max_num_queries(4):
        response = world.client.get("/api/v1/listens")  # the buffered ones included (read-your-writes)

    body = response.json()
    ids_before_flush = [row["id"] for row in body["results"]]
    assert (ids_before_flush == [None, None, None]) is (write_mode == "buffered")
    settle()
    body = world.client.get("/api/v1/listens").json()
    assert None not in [row["id"] for row in body["results"]]
    assert body["count"] == 3
    history = [
        (row["track"]["title"], row["play_number"], row["device_id"], row["listened_at"]) for row in body["results"]
    ]
    assert history == [
        ("Song", 2, "phone", "2025-05-01T12:00:04Z"),
        ("Episode", 1, "car", "2025-05-01T12:00:02Z"),
        ("Song", 1, "phone", "2025-05-01T12:00:01Z"),
    ]  # fmt: skip
    assert Listen.objects.count() == 4
    world.song.library.accesses.filter(user=world.listener).delete()
    assert world.client.get("/api/v1/listens").json()["count"] == 1


def test_the_admin_shows_playback_read_only(world, client):
    put(world.client, world.song, 150_000)
    world.client.post("/api/v1/sessions", {"track": world.song.pk, "device_id": "phone"}, format="json")
    settle()
    staff = make_user(is_staff=True, is_superuser=True)
    client.force_login(staff)

    for model in ("playbackprogress", "listen", "playbacksession"):
        page = client.get(reverse(f"admin:playback_{model}_changelist"))
        assert page.status_code == 200, model
        assert world.listener.username in page.content.decode()
        assert client.get(reverse(f"admin:playback_{model}_add")).status_code == 403
    progress_id = world.listener.playback_progress.get().pk
    detail = client.get(reverse("admin:playback_playbackprogress_change", args=[progress_id]))
    assert detail.status_code == 200 and 'name="position_ms"' not in detail.content.decode()
    assert client.post(reverse("admin:playback_playbackprogress_delete", args=[progress_id])).status_code == 403
