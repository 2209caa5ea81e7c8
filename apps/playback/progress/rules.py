"""The progress rules, as pure functions of the stored state and one change, in Python and in Lua.

`progress_apply` is what PROGRESS_WRITE_MODE=direct runs inside its transaction; `APPLY_LUA` below it is
the same function for the Redis buffer, run inside the buffer's one atomic script (`buffer.py` adds the
reading and writing of the hash around it). The two are kept side by side on purpose: a change to one is a
change to the other, and tests/playback/test_progress.py runs every case in both write modes.

Times are integers of microseconds since the epoch (UTC): what Redis stores and Lua compares exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.conf import settings

from apps.playback.models import PlaybackState

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A session offers no resume point within the last 5 % of a track: the next play starts over.
RESUME_LIMIT_RATIO = 0.95
# How far past the known duration a position may be (durations are estimates for some formats).
POSITION_SLACK_MS = 2000


class ProgressAction(enum.StrEnum):
    """What a change asks for."""

    REPORT = "report"  # a device reports a position
    RESET = "reset"  # back to the start, not completed (DELETE progress, mark unplayed)
    PLAYED = "played"  # mark played: completed at the end


class ChangeVerdict(enum.StrEnum):
    """What the rules made of a change (the Lua copy answers the same strings)."""

    APPLIED = "applied"
    REPLAY = "replay"  # the very same update again (same time, device and position): nothing to do
    STALE = "stale"  # older than what is stored (or a different update at the same time): refused


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def now_us() -> int:
    return to_us(datetime.now(UTC))


@dataclass(frozen=True)
class ProgressState:
    user_id: int
    track_id: int
    position_ms: int
    duration_ms: int
    completed: bool
    play_count: int
    device_id: str
    state: str
    client_updated_us: int
    updated_us: int

    @property
    def progress(self) -> float:
        if self.duration_ms <= 0:
            return 1.0 if self.completed else 0.0
        return round(min(1.0, self.position_ms / self.duration_ms), 4)

    @property
    def client_updated_at(self) -> datetime:
        return from_us(self.client_updated_us)

    @property
    def updated_at(self) -> datetime:
        return from_us(self.updated_us)

    @property
    def in_progress(self) -> bool:
        return not self.completed and self.position_ms > 0

    @property
    def resume_position_ms(self) -> int | None:
        """Where a new session starts: nowhere in particular once completed or in the last 5 %."""
        if self.completed or self.position_ms <= 0:
            return None
        if self.duration_ms > 0 and self.position_ms >= self.duration_ms * RESUME_LIMIT_RATIO:
            return None
        return self.position_ms


@dataclass(frozen=True)
class PendingListen:
    """A Listen to insert: the play-through numbered `play_number` of (user, track) completed."""

    user_id: int
    track_id: int
    play_number: int
    device_id: str
    position_ms: int
    listened_us: int


@dataclass(frozen=True)
class ProgressChange:
    """One change to judge: a device's report or a server-side action, with what the rules need to know."""

    action: ProgressAction
    user_id: int
    track_id: int
    position_ms: int
    duration_ms: int
    device_id: str
    state: str
    client_updated_us: int
    now_us: int
    threshold_ms: int


def completion_threshold_ms(*, kind: str, duration_ms: int) -> int:
    """The position at which a play-through counts. Never 0: a play is never counted at its start."""
    rules = cast(dict[str, dict[str, Any]], settings.PROGRESS_COMPLETION)  # settings.py's shape, as written
    rule = rules.get(kind) or rules["music"]
    threshold = duration_ms * rule["percent"] // 100
    if rule["after_ms"] is not None:
        threshold = min(threshold, rule["after_ms"])
    return max(threshold, 1)


def progress_apply(
    current: ProgressState | None, change: ProgressChange
) -> tuple[ChangeVerdict, ProgressState, PendingListen | None]:
    """(verdict, the new state or the current one when refused, the Listen this change completes)."""
    client_us = change.client_updated_us
    if change.action is ProgressAction.REPORT:
        if current is not None and client_us < current.client_updated_us:
            return ChangeVerdict.STALE, current, None
        if current is not None and client_us == current.client_updated_us:
            same = (change.position_ms, change.device_id) == (current.position_ms, current.device_id)
            return (ChangeVerdict.REPLAY if same else ChangeVerdict.STALE), current, None
    elif current is not None:
        # Server-side actions always win, even over a device whose clock runs a little ahead.
        client_us = max(client_us, current.client_updated_us + 1)

    completed = current.completed if current else False
    play_count = current.play_count if current else 0
    position_ms, state = change.position_ms, change.state
    counts = False
    if change.action is ProgressAction.RESET:
        position_ms, completed, state = 0, False, PlaybackState.STOPPED
    elif change.action is ProgressAction.PLAYED:
        position_ms, state = change.duration_ms, PlaybackState.STOPPED
        counts = not completed
        completed = True
    elif position_ms >= change.threshold_ms:
        counts = not completed
        completed = True
    else:
        # Back before the threshold: a new play-through, which counts again when it gets there.
        completed = False
    if counts:
        play_count += 1

    new = ProgressState(
        user_id=change.user_id,
        track_id=change.track_id,
        position_ms=position_ms,
        duration_ms=change.duration_ms,
        completed=completed,
        play_count=play_count,
        device_id=change.device_id,
        state=state,
        client_updated_us=client_us,
        updated_us=change.now_us,
    )
    listen = (
        PendingListen(
            user_id=change.user_id,
            track_id=change.track_id,
            play_number=play_count,
            device_id=change.device_id,
            position_ms=position_ms,
            listened_us=client_us,
        )
        if counts
        else None
    )
    return ChangeVerdict.APPLIED, new, listen


# `progress_apply` again, in Lua, for the Redis buffer: the same steps in the same order, with the states as
# tables named like ProgressState's fields. Keep the two in step; both write modes run the same tests.
# Returns (verdict, the new state or the current one when refused, whether this change completes a play:
# the caller stores that Listen from the new state, as `PendingListen` is built above).
APPLY_LUA = """
local function progress_apply(current, change)
  local client_us = change.client_updated_us
  if change.action == 'report' then
    if current and client_us < current.client_updated_us then return 'stale', current, false end
    if current and client_us == current.client_updated_us then
      local same = change.position_ms == current.position_ms and change.device_id == current.device_id
      if same then return 'replay', current, false end
      return 'stale', current, false
    end
  elseif current then
    -- Server-side actions always win, even over a device whose clock runs a little ahead.
    client_us = math.max(client_us, current.client_updated_us + 1)
  end

  local completed, play_count = false, 0
  if current then completed, play_count = current.completed, current.play_count end
  local position_ms, state = change.position_ms, change.state
  local counts = false
  if change.action == 'reset' then
    position_ms, completed, state = 0, false, 'stopped'
  elseif change.action == 'played' then
    position_ms, state = change.duration_ms, 'stopped'
    counts = not completed
    completed = true
  elseif position_ms >= change.threshold_ms then
    counts = not completed
    completed = true
  else
    -- Back before the threshold: a new play-through, which counts again when it gets there.
    completed = false
  end
  if counts then play_count = play_count + 1 end

  return 'applied', {position_ms=position_ms, duration_ms=change.duration_ms, completed=completed,
                     play_count=play_count, device_id=change.device_id, state=state, client_updated_us=client_us,
                     updated_us=change.now_us}, counts
end
"""


def newest(*states: ProgressState | None) -> ProgressState | None:
    """Of the same progress seen in PostgreSQL and in the buffer, the one with the newest update."""
    found = [state for state in states if state is not None]
    if not found:
        return None
    return max(found, key=lambda state: (state.client_updated_us, state.updated_us))
