"""The Redis side of progress (PROGRESS_WRITE_MODE=buffered), and the one place that decides whether Redis
is used at all: the write-mode switch and the breaker that leaves an unreachable Redis alone. No PostgreSQL.

One hash per (user, track) `progress:e:<user>:<track>` holds the newest state (its fields: the table in
`store.py`). A dirty entry is a member `<user>:<track>` of the set `progress:dirty`, and its track id is in
`progress:dirty:<user>` (what the "continue listening" and `?since=` reads lay over PostgreSQL). Dirty
entries never expire; a flushed one stays PROGRESS_BUFFER_TTL seconds as a copy of the row, checked against
the row each write brings along.

Keys carry the cache KEY_PREFIX, so instances (and tests) sharing one Redis stay apart.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import redis
from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.commands.core import Script

from apps.playback.progress.rules import APPLY_LUA, ChangeVerdict, PendingListen, ProgressChange, ProgressState
from apps.playback.progress.store import HASH_FIELDS, HASH_LUA, hash_values, listens_from_hash, state_from_hash

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WriteMode(enum.StrEnum):
    """PROGRESS_WRITE_MODE (settings keeps the plain string; these compare equal to it)."""

    BUFFERED = "buffered"  # Redis first, flushed to PostgreSQL by beat
    DIRECT = "direct"  # a PostgreSQL transaction per write


# What makes the buffer unusable for this write, so that the service writes to PostgreSQL instead.
# ReadOnlyError: a failover left us on a replica. A script error is a bug and is not caught.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)

# The record: read the entry (or seed it from the PostgreSQL row), apply the rules (rules.APPLY_LUA, the
# Lua copy of rules.progress_apply), write the entry back dirty, all in one atomic step.
# KEYS: entry, dirty set, the user's dirty set. ARGV: 1-10 the change (action, user, track, position_ms,
# duration_ms, device_id, state, client_updated_us, now_us, threshold_ms), 11 member, 12 the TTL of a clean
# entry, 13 'row' or 'none', 14-21 the row's HASH_FIELDS values.
_RECORD_LUA = (
    HASH_LUA
    + APPLY_LUA
    + """
local key, dirty, user_dirty = KEYS[1], KEYS[2], KEYS[3]
local seed = nil
if ARGV[13] == 'row' then seed = state_of({unpack(ARGV, 14, 21)}) end
local current = read_state(key)
if current and (not seed or current.updated_us ~= seed.updated_us)
   and redis.call('SISMEMBER', dirty, ARGV[11]) == 0 then
  -- A clean entry is a copy of the PostgreSQL row (same server time). One that differs is out of date:
  -- a write went straight to PostgreSQL while Redis could not be reached. PostgreSQL wins.
  redis.call('DEL', key)
  current = nil
end
if not current and seed then
  -- Keep what PostgreSQL holds as a clean entry (a copy of the row).
  current = seed
  write_state(key, seed)
  redis.call('HSET', key, VERSION, '0')
  redis.call('EXPIRE', key, tonumber(ARGV[12]))
end
local change = {action=ARGV[1], position_ms=tonumber(ARGV[4]), duration_ms=tonumber(ARGV[5]), device_id=ARGV[6],
                state=ARGV[7], client_updated_us=tonumber(ARGV[8]), now_us=tonumber(ARGV[9]),
                threshold_ms=tonumber(ARGV[10])}
local verdict, state, counts = progress_apply(current, change)
if verdict == 'applied' then
  write_state(key, state)
  redis.call('HINCRBY', key, VERSION, 1)
  if counts then
    local pending = redis.call('HGET', key, LISTENS)
    local listens = {}
    if pending then listens = cjson.decode(pending) end
    table.insert(listens, {fmt(state.play_count), state.device_id, fmt(state.position_ms),
                           fmt(state.client_updated_us)})
    redis.call('HSET', key, LISTENS, cjson.encode(listens))
  end
  redis.call('PERSIST', key)
  redis.call('SADD', dirty, ARGV[11])
  redis.call('SADD', user_dirty, ARGV[3])
end
local reply = values_of(state)
table.insert(reply, 1, verdict)
table.insert(reply, redis.call('SCARD', dirty))
return reply
"""
)

# Every dirty entry of one user, each as `entry_line` makes it.
_USER_DIRTY_LUA = (
    HASH_LUA
    + """
local out = {}
for _, track in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local member = ARGV[2] .. track
  local line = entry_line(ARGV[1] .. member, member)
  if line then out[#out + 1] = line end
end
return out
"""
)

# Up to ARGV[2] dirty entries, each as `entry_line` makes it, or only its member when the hash is gone. One
# round trip and 10 000 short strings to parse, instead of 10 000 pipelined HMGETs whose replies cost more
# to decode than the flush's SQL.
_SNAPSHOT_LUA = (
    HASH_LUA
    + """
local out = {}
for _, member in ipairs(redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2]))) do
  out[#out + 1] = entry_line(ARGV[1] .. member, member) or member
end
return out
"""
)

# After PostgreSQL committed a flush: per entry (member, version read, last listen number written,
# applied 1/0). An entry unchanged since it was read is clean now (or dropped when PostgreSQL held a
# newer state: the next write seeds it again from there); one written meanwhile stays dirty and only
# loses the listens that are in PostgreSQL now.
_ACK_LUA = (
    HASH_LUA
    + """
local dirty = KEYS[1]
local entry_prefix, dirty_prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 4 do
  local member, version, last_listen, applied = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local key = entry_prefix .. member
  local user, track = string.match(member, '^(%d+):(%d+)$')
  local current = redis.call('HGET', key, VERSION)
  if current == version or not current then
    redis.call('SREM', dirty, member)
    redis.call('SREM', dirty_prefix .. user, track)
    if current and applied == '1' then
      redis.call('HDEL', key, LISTENS)
      redis.call('EXPIRE', key, ttl)
    elseif current then
      redis.call('DEL', key)
    end
  elseif last_listen > 0 then
    local pending = redis.call('HGET', key, LISTENS)
    if pending then
      local keep = {}
      for _, listen in ipairs(cjson.decode(pending)) do
        if tonumber(listen[1]) > last_listen then table.insert(keep, listen) end
      end
      if #keep > 0 then redis.call('HSET', key, LISTENS, cjson.encode(keep)) else redis.call('HDEL', key, LISTENS) end
    end
  end
end
return redis.call('SCARD', dirty)
"""
)


# After Redis failed, this process leaves it alone for a few seconds: a Redis that times out (rather than
# refusing at once) would otherwise cost every request REDIS_SOCKET_TIMEOUT seconds before the fallback.
RETRY_AFTER_S = 5.0
_down_until = 0.0


def buffer_usable() -> bool:
    return time.monotonic() >= _down_until


def buffer_failed(error: Exception) -> None:
    """Leave Redis alone for RETRY_AFTER_S and say so in one line: an outage is an expected state with a
    fallback, not a bug, so no traceback (one per request filled the log while Redis was down)."""
    global _down_until
    _down_until = time.monotonic() + RETRY_AFTER_S
    logger.warning("progress buffer unavailable (%s), using PostgreSQL only for %.0f s", error, RETRY_AFTER_S)


def buffer_reset_breaker() -> None:
    global _down_until
    _down_until = 0.0


def buffer_attempt(operation: Callable[[], T]) -> T | None:
    """`operation` against the buffer when it is in use: buffered mode and Redis not left alone after a
    failure. None when it is not, or when Redis fails now (the breaker then opens): the caller answers
    from PostgreSQL alone, which holds every write made while the buffer was not used."""
    if settings.PROGRESS_WRITE_MODE != WriteMode.BUFFERED or not buffer_usable():
        return None
    try:
        return operation()
    except UNAVAILABLE as error:
        buffer_failed(error)
        return None


@dataclass(frozen=True)
class BufferedEntry:
    """A dirty entry as the flush read it: its state, version and listens not in PostgreSQL yet."""

    state: ProgressState
    version: str
    listens: tuple[PendingListen, ...]

    @property
    def member(self) -> str:
        return f"{self.state.user_id}:{self.state.track_id}"


def _client() -> redis.Redis:
    return get_redis_connection("default")


def _key(suffix: str) -> str:
    return cache.make_key(f"progress:{suffix}")


# Bound to no client (redis-py allows it; its stubs do not say so): each call passes the current one.
_RECORD = Script(None, _RECORD_LUA.encode())  # type: ignore[arg-type]
_USER_DIRTY = Script(None, _USER_DIRTY_LUA.encode())  # type: ignore[arg-type]
_ACK = Script(None, _ACK_LUA.encode())  # type: ignore[arg-type]
_SNAPSHOT = Script(None, _SNAPSHOT_LUA.encode())  # type: ignore[arg-type]


def record_args(*, change: ProgressChange, seed: ProgressState | None) -> tuple[list[str], list[str | int]]:
    """The record script's KEYS and ARGV for a change (see _RECORD_LUA)."""
    keys = [_key(f"e:{change.user_id}:{change.track_id}"), _key("dirty"), _key(f"dirty:{change.user_id}")]
    args: list[str | int] = [
        change.action.value, change.user_id, change.track_id, change.position_ms, change.duration_ms,
        change.device_id, change.state, change.client_updated_us, change.now_us, change.threshold_ms,
        f"{change.user_id}:{change.track_id}", settings.PROGRESS_BUFFER_TTL_S,
    ]  # fmt: skip
    args += ["none", *[""] * len(HASH_FIELDS)] if seed is None else ["row", *hash_values(seed)]
    return keys, args


def buffer_record(*, change: ProgressChange, seed: ProgressState | None) -> tuple[ChangeVerdict, ProgressState, int]:
    """Apply a change in Redis. `seed`: the PostgreSQL row (None: no row). It starts the entry when Redis
    has none, and replaces a clean entry that differs from it (see _RECORD_LUA).

    Returns (verdict, state, dirty entries).
    """
    keys, args = record_args(change=change, seed=seed)
    reply = _RECORD(keys=keys, args=args, client=_client())
    state = state_from_hash(user_id=change.user_id, track_id=change.track_id, values=reply[1:9])
    return ChangeVerdict(reply[0].decode()), state, int(reply[9])


def buffer_get(*, user_id: int, track_id: int) -> ProgressState | None:
    values = _client().hmget(_key(f"e:{user_id}:{track_id}"), HASH_FIELDS)
    if values[0] is None:
        return None
    # The scripts write HASH_FIELDS together: with the first one there, all are.
    return state_from_hash(user_id=user_id, track_id=track_id, values=cast(list[bytes], values))


def buffer_user_dirty(*, user_id: int) -> list[BufferedEntry]:
    """The user's entries not flushed yet: what reads of many rows lay over PostgreSQL."""
    reply = _USER_DIRTY(keys=[_key(f"dirty:{user_id}")], args=[_key("e:"), f"{user_id}:"], client=_client())
    return [entry for entry in map(_entry, reply) if isinstance(entry, BufferedEntry)]


def buffer_dirty_count() -> int:
    return int(_client().scard(_key("dirty")))


def buffer_snapshot(*, limit: int) -> list[BufferedEntry]:
    """Up to `limit` dirty entries, each read atomically with its version and pending listens."""
    reply = _SNAPSHOT(keys=[_key("dirty")], args=[_key("e:"), limit], client=_client())
    entries = [_entry(item) for item in reply]
    orphans = [entry for entry in entries if isinstance(entry, str)]
    if orphans:  # dirty but gone: nothing to write, only to forget
        buffer_ack(acks=[(member, "", 0, False) for member in orphans])
    return [entry for entry in entries if isinstance(entry, BufferedEntry)]


def _entry(item: bytes) -> BufferedEntry | str:
    """One entry as the scripts' `entry_line` sends it; only its member when it is gone."""
    fields = item.decode().split("\x1f")
    if len(fields) == 1:
        return fields[0]
    member, *values, version, pending = fields
    user_id, track_id = (int(part) for part in member.split(":"))
    return BufferedEntry(
        state=state_from_hash(user_id=user_id, track_id=track_id, values=values),
        version=version,
        listens=listens_from_hash(user_id=user_id, track_id=track_id, pending=pending),
    )


def buffer_ack(*, acks: Sequence[tuple[str, str, int, bool]]) -> int:
    """Mark flushed entries clean: (member, version read, last listen number written, applied)."""
    args: list[str | int] = [_key("e:"), _key("dirty:"), settings.PROGRESS_BUFFER_TTL_S]
    for member, version, last_listen, applied in acks:
        args += [member, version, last_listen, "1" if applied else "0"]
    return int(_ACK(keys=[_key("dirty")], args=args, client=_client()))
