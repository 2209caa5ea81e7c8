"""One owner for the ways a progress state is kept and shown: the PostgreSQL row, the Redis hash (with the
Lua that reads and writes it) and the API output. Every other module converts through here, so a field
added to ProgressState is added here and nowhere else (and in `rules.APPLY_LUA` if the rules use it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from apps.library.models import Track
from apps.playback.models import Listen, PlaybackProgress, PlaybackState
from apps.playback.progress.rules import PendingListen, ProgressState, from_us, to_us

# --- PostgreSQL ------------------------------------------------------------------------------------------

# The progress row's columns, in ProgressState's order after (user_id, track_id).
ROW_COLUMNS = (
    "position_ms",
    "duration_ms",
    "completed",
    "play_count",
    "device_id",
    "state",
    "client_updated_at",
    "updated_at",
)


def state_from_columns(*, user_id: int, track_id: int, values: Sequence[Any]) -> ProgressState:
    """A row read by hand-written SQL, its ROW_COLUMNS in that order."""
    position_ms, duration_ms, completed, play_count, device_id, state, client_updated_at, updated_at = values
    return ProgressState(
        user_id=user_id,
        track_id=track_id,
        position_ms=position_ms,
        duration_ms=duration_ms,
        completed=completed,
        play_count=play_count,
        device_id=device_id,
        state=state,
        client_updated_us=to_us(client_updated_at),
        updated_us=to_us(updated_at),
    )


def state_from_row(row: PlaybackProgress) -> ProgressState:
    return state_from_columns(
        user_id=row.user_id, track_id=row.track_id, values=[getattr(row, column) for column in ROW_COLUMNS]
    )


def row_fields(state: ProgressState) -> dict[str, Any]:
    """The row's ROW_COLUMNS for a state (what the direct write saves)."""
    return {
        "position_ms": state.position_ms,
        "duration_ms": state.duration_ms,
        "completed": state.completed,
        "play_count": state.play_count,
        "device_id": state.device_id,
        "state": state.state,
        "client_updated_at": from_us(state.client_updated_us),
        "updated_at": from_us(state.updated_us),
    }


def listen_row(listen: PendingListen, *, track: Track | None = None) -> Listen:
    """An unsaved Listen (with its track when given, for a list that shows it)."""
    row = Listen(
        user_id=listen.user_id,
        track_id=listen.track_id,
        play_number=listen.play_number,
        device_id=listen.device_id,
        position_ms=listen.position_ms,
        listened_at=from_us(listen.listened_us),
    )
    if track is not None:
        row.track = track
    return row


def bulk_arrays(states: Sequence[ProgressState], listens: Sequence[PendingListen]) -> dict[str, list[Any]]:
    """The flush statement's parameters: one array per ProgressState field (named like it) and per
    PendingListen field (prefixed `l_`). Times stay integers of µs, converted in SQL."""
    arrays = {field.name: [getattr(state, field.name) for state in states] for field in fields(ProgressState)}
    for field in fields(PendingListen):
        arrays[f"l_{field.name}"] = [getattr(listen, field.name) for listen in listens]
    return arrays


# --- Redis -----------------------------------------------------------------------------------------------
#
# One hash per (user, track), key `progress:e:<user>:<track>`. Short field names: a large deployment holds
# one hash per listener and track, and these are what a running Redis already holds (renaming them would
# strand the entries of an upgrade). What each one is:
#
#   field  ProgressState / meaning           stored as
#   p      position_ms                       integer
#   d      duration_ms                       integer
#   c      completed                         '1' / '0'
#   n      play_count                        integer
#   dev    device_id                         text
#   st     state                             text (PlaybackState)
#   ct     client_updated_us                 integer µs (the device's time: newest wins)
#   ut     updated_us                        integer µs (the server's time of the accepted write)
#   v      version, +1 per accepted write    integer (the flush marks an entry clean only if unchanged)
#   ls     listens not flushed yet           JSON [[play_number, device_id, position_ms, listened_us], ...]
#
# p..ut, in this order, are HASH_FIELDS: what HMGET reads, what the scripts reply and what a seed sends.
HASH_FIELDS = ("p", "d", "c", "n", "dev", "st", "ct", "ut")

# The same mapping for the buffer's Lua scripts (prepended to each). Numbers are formatted with %.0f: µs
# timestamps (~1.7e15) are exact in Lua's doubles but tostring() would print them in exponent form.
# `entry_line` is one dirty entry for Python: "member US p US d ... US ut US v US ls" (US = \x1f, which no
# field holds: device ids are printable), or nil when the hash is gone.
HASH_LUA = """
local FIELDS = {$FIELDS}
local VERSION, LISTENS = 'v', 'ls'
local ENTRY_FIELDS = {unpack(FIELDS)}
ENTRY_FIELDS[#FIELDS + 1], ENTRY_FIELDS[#FIELDS + 2] = VERSION, LISTENS
local function fmt(x) return string.format('%.0f', x) end
local function state_of(v)
  if not v[1] then return nil end
  return {position_ms=tonumber(v[1]), duration_ms=tonumber(v[2]), completed=(v[3] == '1'),
          play_count=tonumber(v[4]), device_id=v[5], state=v[6], client_updated_us=tonumber(v[7]),
          updated_us=tonumber(v[8])}
end
local function values_of(s)
  return {fmt(s.position_ms), fmt(s.duration_ms), s.completed and '1' or '0', fmt(s.play_count), s.device_id,
          s.state, fmt(s.client_updated_us), fmt(s.updated_us)}
end
local function read_state(key) return state_of(redis.call('HMGET', key, unpack(FIELDS))) end
local function write_state(key, s)
  local values, args = values_of(s), {}
  for i, field in ipairs(FIELDS) do args[2 * i - 1] = field; args[2 * i] = values[i] end
  redis.call('HSET', key, unpack(args))
end
local function entry_line(key, member)
  local v = redis.call('HMGET', key, unpack(ENTRY_FIELDS))
  if not v[1] then return nil end
  return table.concat({member, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] or '0', v[10] or ''}, '\\31')
end
""".replace("$FIELDS", ", ".join(f"'{field}'" for field in HASH_FIELDS))


def state_from_hash(*, user_id: int, track_id: int, values: Sequence[bytes | str]) -> ProgressState:
    """HASH_FIELDS' values, as HMGET or a script returns them."""
    p, d, c, n, dev, st, ct, ut = (value.decode() if isinstance(value, bytes) else value for value in values)
    return ProgressState(
        user_id=user_id,
        track_id=track_id,
        position_ms=int(p),
        duration_ms=int(d),
        completed=c == "1",
        play_count=int(n),
        device_id=dev,
        state=st,
        client_updated_us=int(ct),
        updated_us=int(ut),
    )


def hash_values(state: ProgressState) -> list[str | int]:
    """HASH_FIELDS' values for a state (a seed from the PostgreSQL row)."""
    return [state.position_ms, state.duration_ms, "1" if state.completed else "0", state.play_count,
            state.device_id, state.state, state.client_updated_us, state.updated_us]  # fmt: skip


def listens_from_hash(*, user_id: int, track_id: int, pending: str) -> tuple[PendingListen, ...]:
    """The `ls` field (empty: none)."""
    return tuple(
        PendingListen(
            user_id=user_id,
            track_id=track_id,
            play_number=int(number),
            device_id=device_id,
            position_ms=int(position_ms),
            listened_us=int(listened_us),
        )
        for number, device_id, position_ms, listened_us in (json.loads(pending) if pending else ())
    )


# --- API output --------------------------------------------------------------------------------------------


def progress_output(state: ProgressState) -> dict[str, Any]:
    """serializers.ProgressOutput(state).data, written out: the answer of every progress PUT, where DRF's
    generic serializer machinery was a fifth of the request's time. A test keeps the two identical."""
    return {
        "track_id": state.track_id,
        "position_ms": state.position_ms,
        "duration_ms": state.duration_ms,
        "progress": state.progress,
        "completed": state.completed,
        "play_count": state.play_count,
        "device_id": state.device_id,
        "state": state.state,
        "client_updated_at": _utc_iso(state.client_updated_at),
        "updated_at": _utc_iso(state.updated_at),
    }


def progress_output_unplayed(*, track_id: int, duration_ms: int) -> dict[str, Any]:
    """A track never played: its zero state, not a 404 (the track exists)."""
    return {
        "track_id": track_id,
        "position_ms": 0,
        "duration_ms": duration_ms,
        "progress": 0.0,
        "completed": False,
        "play_count": 0,
        "device_id": None,
        "state": PlaybackState.STOPPED.value,
        "client_updated_at": None,
        "updated_at": None,
    }


def _utc_iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
