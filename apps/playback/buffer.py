"""The Redis side of the progress buffer (PROGRESS_WRITE_MODE=buffered). No PostgreSQL here.

One hash per (user, track) `progress:e:<user>:<track>` holds the newest state: p (position_ms),
d (duration_ms), c (completed 0/1), n (play_count), dev, st (state), ct (client time, µs), ut (server time,
µs), v (version, +1 per accepted write) and ls (listens not flushed yet, JSON). A dirty entry is a member
`<user>:<track>` of the set `progress:dirty`, and its track id is in `progress:dirty:<user>` (what the
"continue listening" and `?since=` reads lay over PostgreSQL). Dirty entries never expire; a flushed one
stays PROGRESS_BUFFER_TTL seconds as a copy of the row, checked against the row each write brings along.

Keys carry the cache KEY_PREFIX, so instances (and tests) sharing one Redis stay apart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.commands.core import Script

from apps.playback.rules import PendingListen, ProgressState, Result, Update

logger = logging.getLogger(__name__)

# What makes the buffer unusable for this write, so that the service writes to PostgreSQL instead.
# ReadOnlyError: a failover left us on a replica. A script error is a bug and is not caught.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)

_FIELDS = ("p", "d", "c", "n", "dev", "st", "ct", "ut")

# The rules of apps.playback.rules.progress_apply, in one atomic step. Numbers travel as strings and
# are formatted with %.0f: µs timestamps (~1.7e15) are exact in Lua's doubles but tostring() would
# print them in exponent form.
_RECORD_LUA = """
local key, dirty, user_dirty = KEYS[1], KEYS[2], KEYS[3]
local function fmt(x) return string.format('%.0f', x) end
local function reply(result, s)
  return {result, fmt(s.p), fmt(s.d), s.c and '1' or '0', fmt(s.n), s.dev, s.st, fmt(s.ct), fmt(s.ut),
          redis.call('SCARD', dirty)}
end
local cur = nil
local seed = ARGV[13]  -- the PostgreSQL row: 'row' (ARGV[14..21]) or 'none'
local v = redis.call('HMGET', key, 'p', 'd', 'c', 'n', 'dev', 'st', 'ct', 'ut')
local row_ut = (seed == 'row') and ARGV[21] or ''
if v[1] and v[8] ~= row_ut and redis.call('SISMEMBER', dirty, ARGV[11]) == 0 then
  -- A clean entry is a copy of the PostgreSQL row (same server time). One that differs is out of date:
  -- a write went straight to PostgreSQL while Redis could not be reached. PostgreSQL wins.
  redis.call('DEL', key)
  v = {false}
end
if v[1] then
  cur = {p=tonumber(v[1]), d=tonumber(v[2]), c=(v[3] == '1'), n=tonumber(v[4]), dev=v[5], st=v[6],
         ct=tonumber(v[7]), ut=tonumber(v[8])}
else
  if seed == 'row' then
    cur = {p=tonumber(ARGV[14]), d=tonumber(ARGV[15]), c=(ARGV[16] == '1'), n=tonumber(ARGV[17]), dev=ARGV[18],
           st=ARGV[19], ct=tonumber(ARGV[20]), ut=tonumber(ARGV[21])}
    -- Keep what PostgreSQL holds as a clean entry (a copy of the row).
    redis.call('HSET', key, 'p', ARGV[14], 'd', ARGV[15], 'c', ARGV[16], 'n', ARGV[17], 'dev', ARGV[18],
               'st', ARGV[19], 'ct', ARGV[20], 'ut', ARGV[21], 'v', '0')
    redis.call('EXPIRE', key, tonumber(ARGV[12]))
  end
end
local op = ARGV[1]
local pos, dur, dev, st = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local cts, now, threshold = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if op == 'update' then
  if cur and cts < cur.ct then return reply('stale', cur) end
  if cur and cts == cur.ct then
    if pos == cur.p and dev == cur.dev then return reply('replay', cur) end
    return reply('stale', cur)
  end
elseif cur and cts < cur.ct + 1 then
  cts = cur.ct + 1
end
local done = false
local plays = 0
if cur then done = cur.c; plays = cur.n end
local counts = false
if op == 'reset' then
  pos = 0; done = false; st = 'stopped'
elseif op == 'played' then
  pos = dur; st = 'stopped'; counts = not done; done = true
elseif pos >= threshold then
  counts = not done; done = true
else
  done = false
end
if counts then plays = plays + 1 end
local new = {p=pos, d=dur, c=done, n=plays, dev=dev, st=st, ct=cts, ut=now}
redis.call('HSET', key, 'p', fmt(pos), 'd', fmt(dur), 'c', done and '1' or '0', 'n', fmt(plays), 'dev', dev,
           'st', st, 'ct', fmt(cts), 'ut', fmt(now))
redis.call('HINCRBY', key, 'v', 1)
if counts then
  local pending = redis.call('HGET', key, 'ls')
  local listens = {}
  if pending then listens = cjson.decode(pending) end
  table.insert(listens, {fmt(plays), dev, fmt(pos), fmt(cts)})
  redis.call('HSET', key, 'ls', cjson.encode(listens))
end
redis.call('PERSIST', key)
redis.call('SADD', dirty, ARGV[11])
redis.call('SADD', user_dirty, ARGV[3])
return reply('ok', new)
"""

# Every dirty entry of one user, in the format of _SNAPSHOT_LUA below.
_USER_DIRTY_LUA = """
local out = {}
for _, track in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local member = ARGV[2] .. track
  local v = redis.call('HMGET', ARGV[1] .. member, 'p', 'd', 'c', 'n', 'dev', 'st', 'ct', 'ut', 'v', 'ls')
  if v[1] then
    out[#out + 1] = table.concat({member, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] or '0', v[10] or ''},
                                 '\\31')
  end
end
return out
"""

# Up to ARGV[2] dirty entries, each as one string "member US p US d ... US v US ls" (US = \x1f, which no
# field can hold: device ids are printable). One round trip and 10 000 short strings to parse, instead of
# 10 000 pipelined HMGETs whose replies cost more to decode than the flush's SQL.
_SNAPSHOT_LUA = """
local out = {}
for _, member in ipairs(redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2]))) do
  local v = redis.call('HMGET', ARGV[1] .. member, 'p', 'd', 'c', 'n', 'dev', 'st', 'ct', 'ut', 'v', 'ls')
  if v[1] then
    out[#out + 1] = table.concat({member, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] or '0', v[10] or ''},
                                 '\\31')
  else
    out[#out + 1] = member
  end
end
return out
"""

# After PostgreSQL committed a flush: per entry (member, version read, last listen number written,
# applied 1/0). An entry unchanged since it was read is clean now (or dropped when PostgreSQL held a
# newer state: the next write seeds it again from there); one written meanwhile stays dirty and only
# loses the listens that are in PostgreSQL now.
_ACK_LUA = """
local dirty = KEYS[1]
local entry_prefix, dirty_prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 4 do
  local member, version, last_listen, applied = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local key = entry_prefix .. member
  local user, track = string.match(member, '^(%d+):(%d+)$')
  local current = redis.call('HGET', key, 'v')
  if current == version or not current then
    redis.call('SREM', dirty, member)
    redis.call('SREM', dirty_prefix .. user, track)
    if current and applied == '1' then
      redis.call('HDEL', key, 'ls')
      redis.call('EXPIRE', key, ttl)
    elseif current then
      redis.call('DEL', key)
    end
  elseif last_listen > 0 then
    local pending = redis.call('HGET', key, 'ls')
    if pending then
      local keep = {}
      for _, listen in ipairs(cjson.decode(pending)) do
        if tonumber(listen[1]) > last_listen then table.insert(keep, listen) end
      end
      if #keep > 0 then redis.call('HSET', key, 'ls', cjson.encode(keep)) else redis.call('HDEL', key, 'ls') end
    end
  end
end
return redis.call('SCARD', dirty)
"""


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


def _state(user_id: int, track_id: int, values: Sequence[bytes | str]) -> ProgressState:
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


_RECORD = Script(None, _RECORD_LUA.encode())
_USER_DIRTY = Script(None, _USER_DIRTY_LUA.encode())
_ACK = Script(None, _ACK_LUA.encode())
_SNAPSHOT = Script(None, _SNAPSHOT_LUA.encode())


def buffer_record(*, update: Update, seed: ProgressState | None) -> tuple[Result, ProgressState, int]:
    """Apply an update in Redis. `seed`: the PostgreSQL row (None: no row). It starts the entry when Redis
    has none, and replaces a clean entry that differs from it (see _RECORD_LUA).

    Returns (result, state, dirty entries).
    """
    if seed is None:
        seed_args = ["none"] + [""] * 8
    else:
        seed_args = ["row", seed.position_ms, seed.duration_ms, "1" if seed.completed else "0", seed.play_count,
                     seed.device_id, seed.state, seed.client_updated_us, seed.updated_us]  # fmt: skip
    reply = _RECORD(
        keys=[
            _key(f"e:{update.user_id}:{update.track_id}"),
            _key("dirty"),
            _key(f"dirty:{update.user_id}"),
        ],
        args=[
            update.op.value, update.user_id, update.track_id, update.position_ms, update.duration_ms,
            update.device_id, update.state, update.client_updated_us, update.now_us, update.threshold_ms,
            f"{update.user_id}:{update.track_id}", settings.PROGRESS_BUFFER_TTL_S, *seed_args,
        ],
        client=_client(),
    )  # fmt: skip
    return Result(reply[0].decode()), _state(update.user_id, update.track_id, reply[1:9]), int(reply[9])


def buffer_get(*, user_id: int, track_id: int) -> ProgressState | None:
    values = _client().hmget(_key(f"e:{user_id}:{track_id}"), _FIELDS)
    if values[0] is None:
        return None
    return _state(user_id, track_id, values)


def buffer_user_dirty(*, user_id: int) -> list[BufferedEntry]:
    """The user's entries not flushed yet: what reads of many rows lay over PostgreSQL."""
    reply = _USER_DIRTY(keys=[_key(f"dirty:{user_id}")], args=[_key("e:"), f"{user_id}:"], client=_client())
    return [entry for entry in map(_entry, reply) if isinstance(entry, BufferedEntry)]


def buffer_dirty_count() -> int:
    return _client().scard(_key("dirty"))


def buffer_snapshot(*, limit: int) -> list[BufferedEntry]:
    """Up to `limit` dirty entries, each read atomically with its version and pending listens."""
    reply = _SNAPSHOT(keys=[_key("dirty")], args=[_key("e:"), limit], client=_client())
    entries = [_entry(item) for item in reply]
    orphans = [entry for entry in entries if isinstance(entry, str)]
    if orphans:  # dirty but gone: nothing to write, only to forget
        buffer_ack(acks=[(member, "", 0, False) for member in orphans])
    return [entry for entry in entries if isinstance(entry, BufferedEntry)]


def _entry(item: bytes) -> BufferedEntry | str:
    """One entry as the scripts above send it; only its member when it is gone."""
    fields = item.decode().split("\x1f")
    if len(fields) == 1:
        return fields[0]
    member, *values, version, pending = fields
    user_id, track_id = (int(part) for part in member.split(":"))
    state = _state(user_id, track_id, values)
    listens = tuple(
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
    return BufferedEntry(state=state, version=version, listens=listens)


def buffer_ack(*, acks: Sequence[tuple[str, str, int, bool]]) -> int:
    """Mark flushed entries clean: (member, version read, last listen number written, applied)."""
    args: list[object] = [_key("e:"), _key("dirty:"), settings.PROGRESS_BUFFER_TTL_S]
    for member, version, last_listen, applied in acks:
        args += [member, version, last_listen, "1" if applied else "0"]
    return int(_ACK(keys=[_key("dirty")], args=args, client=_client()))
