"""Scrobbles, bookmarks and play queues: Revenge's playback progress, sessions and queues, through the same
services as the REST API (the same stale-write rules, the same completion rules).

- scrobble `submission=false` (now playing) opens a playback session on the app's device;
  `submission=true` is a listen at `time`: the play-through that ends then, counted once however often the
  same scrobble is sent (a second one at the same time is a replay, and one older than the stored progress
  is stale, as a progress PUT would be).
- A Subsonic bookmark of a track IS its playback progress: createBookmark moves it (a book bookmarked in an
  app resumes there in the web player and the REST API, and back), deleteBookmark resets it, getBookmarks
  lists "continue listening".
- The play queue is the user's last saved one, whichever device saved it; a save is this app's device's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apps.ops.errors import DomainError
from apps.playback.models import MAX_QUEUE_TRACKS, PlaybackState
from apps.playback.selectors import play_queue_get, progress_in_progress, track_for_progress
from apps.playback.services import play_queue_save, progress_record, progress_reset, session_start
from apps.subsonic import mapping
from apps.subsonic.endpoints.common import songs_by_id
from apps.subsonic.params import MAX_COUNT
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError, missing, not_found


def _time(value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise SubsonicError(
            ErrorCode.MISSING_PARAMETER, f"Parameter time is not milliseconds: {value[:50]!r}"
        ) from None


@endpoint("scrobble")
def scrobble(call: Call) -> dict[str, Any]:
    ids = call.params.values("id")
    if not ids:
        raise missing("id")
    times = call.params.values("time")
    submission = call.params.flag("submission", True)
    track_ids = [mapping.parse_track_id(value) for value in ids]
    for index, track_pk in enumerate(track_ids):
        if not submission:
            session_start(user=call.user, track_id=track_pk, device_id=call.caller.device_id)
            continue
        at = _time(times[index] if index < len(times) else None)
        track = track_for_progress(user=call.user, track_id=track_pk)
        if at is not None:
            # The play-through began before it ended: a second listen of a track already completed counts
            # again. Sent again, this start is older than the stored end (stale) and the end a replay.
            progress_record(user=call.user, track_id=track_pk, position_ms=0, device_id=call.caller.device_id,
                            client_updated_at=at - timedelta(milliseconds=1), state=PlaybackState.PLAYING)  # fmt: skip
        progress_record(
            user=call.user,
            track_id=track_pk,
            position_ms=track.duration_ms,
            device_id=call.caller.device_id,
            client_updated_at=at,
            state=PlaybackState.STOPPED,
        )
    return {}


@endpoint("getBookmarks")
def get_bookmarks(call: Call) -> dict[str, Any]:
    rows = list(progress_in_progress(user=call.user)[:MAX_COUNT])
    songs = {entry["id"]: entry for entry in songs_by_id(call.user, [row.state.track_id for row in rows])}
    bookmarks = []
    for row in rows:
        entry = songs.get(mapping.track_id(row.state.track_id))
        if entry is None:
            continue
        bookmarks.append(
            {
                "position": row.state.position_ms,
                "username": call.user.get_username(),
                "comment": "",
                "created": row.state.updated_at,
                "changed": row.state.updated_at,
                "entry": entry,
            }
        )
    return {"bookmarks": {"bookmark": bookmarks}}


@endpoint("createBookmark")
def create_bookmark(call: Call) -> dict[str, Any]:
    track_pk = mapping.parse_track_id(call.params.require("id"))
    position_ms = call.params.require_number("position")
    outcome = progress_record(
        user=call.user,
        track_id=track_pk,
        position_ms=position_ms,
        device_id=call.caller.device_id,
        state=PlaybackState.PAUSED,
    )
    if outcome.stale:
        raise SubsonicError(ErrorCode.GENERIC, "Another device moved this track's progress at the same moment.")
    return {}


@endpoint("deleteBookmark")
def delete_bookmark(call: Call) -> dict[str, Any]:
    track_pk = mapping.parse_track_id(call.params.require("id"))
    progress_reset(user=call.user, track_id=track_pk, device_id=call.caller.device_id)
    return {}


def _queue(call: Call) -> tuple[dict[str, Any], int] | None:
    state = play_queue_get(user=call.user, device_id=None)
    if state.queue.updated_at is None:
        return None
    entries = songs_by_id(call.user, state.track_ids)
    body = {
        "position": state.queue.position_ms,
        "username": call.user.get_username(),
        "changed": state.queue.updated_at,
        "changedBy": state.queue.device_id.removeprefix("subsonic:"),
        "entry": entries,
    }
    return body, state.current_index if entries else -1


@endpoint("getPlayQueue")
def get_play_queue(call: Call) -> dict[str, Any]:
    found = _queue(call)
    if found is None:
        return {}  # nothing saved yet: no playQueue element, as Subsonic servers answer
    body, current = found
    entries = body["entry"]
    return {"playQueue": {"current": entries[current]["id"] if 0 <= current < len(entries) else None, **body}}


@endpoint("getPlayQueueByIndex")
def get_play_queue_by_index(call: Call) -> dict[str, Any]:
    found = _queue(call)
    if found is None:
        return {}
    body, current = found
    return {"playQueueByIndex": {"currentIndex": current if current >= 0 else None, **body}}


def _save(call: Call, track_ids: list[int], current_index: int) -> dict[str, Any]:
    position_ms = call.params.number("position", 0) or 0
    try:
        play_queue_save(
            user=call.user,
            device_id=call.caller.device_id,
            track_ids=track_ids,
            current_index=current_index,
            position_ms=position_ms,
        )
    except DomainError as error:
        if error.fields and "track_ids" in error.fields and len(track_ids) <= MAX_QUEUE_TRACKS:
            raise not_found("Song") from None  # an id the user may not see is one that does not exist
        raise
    return {}


@endpoint("savePlayQueue")
def save_play_queue(call: Call) -> dict[str, Any]:
    track_ids = [mapping.parse_track_id(value) for value in call.params.values("id")]
    current = call.params.get("current")
    current_index = 0
    if current and track_ids:
        current_pk = mapping.parse_track_id(current)
        if current_pk not in track_ids:
            raise SubsonicError(ErrorCode.MISSING_PARAMETER, "current is not one of the ids.")
        current_index = track_ids.index(current_pk)
    return _save(call, track_ids, current_index)


@endpoint("savePlayQueueByIndex")
def save_play_queue_by_index(call: Call) -> dict[str, Any]:
    track_ids = [mapping.parse_track_id(value) for value in call.params.values("id")]
    current_index = call.params.number("currentIndex", 0) or 0
    if track_ids and current_index >= len(track_ids):
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, "currentIndex is not a position in the ids.")
    return _save(call, track_ids, current_index if track_ids else 0)
