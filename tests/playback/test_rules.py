"""The two copies of the progress rules, side by side in apps/playback/progress/rules.py: the Python one
(direct mode) and the Lua one (the Redis buffer) give the same answer to every case, run in a real Redis."""

from __future__ import annotations

import itertools

import pytest
from django_redis import get_redis_connection

from apps.playback.models import PlaybackState
from apps.playback.progress.rules import (
    APPLY_LUA,
    ChangeVerdict,
    ProgressAction,
    ProgressChange,
    ProgressState,
    progress_apply,
)
from apps.playback.progress.store import HASH_LUA, hash_values, state_from_hash

# ARGV: 'row' or 'none', the current state's HASH_FIELDS values (2-9), then the change (10-17).
_APPLY_ONCE_LUA = (
    HASH_LUA
    + APPLY_LUA
    + """
local current = nil
if ARGV[1] == 'row' then current = state_of({unpack(ARGV, 2, 9)}) end
local change = {action=ARGV[10], position_ms=tonumber(ARGV[11]), duration_ms=tonumber(ARGV[12]), device_id=ARGV[13],
                state=ARGV[14], client_updated_us=tonumber(ARGV[15]), now_us=tonumber(ARGV[16]),
                threshold_ms=tonumber(ARGV[17])}
local verdict, state, counts = progress_apply(current, change)
local reply = values_of(state)
table.insert(reply, 1, verdict)
table.insert(reply, counts and '1' or '0')
return reply
"""
)

T = 1_746_100_800_000_000  # 2025-05-01 12:00 UTC in µs: the size of real timestamps, exact in Lua's doubles


def _current_states() -> list[ProgressState | None]:
    states: list[ProgressState | None] = [None]
    for completed, play_count, position_ms, device_id in itertools.product(
        (False, True), (0, 3), (0, 40_000, 150_000), ("phone", "tv")
    ):
        states.append(
            ProgressState(
                user_id=1,
                track_id=2,
                position_ms=position_ms,
                duration_ms=200_000,
                completed=completed,
                play_count=play_count,
                device_id=device_id,
                state=PlaybackState.PAUSED,
                client_updated_us=T,
                updated_us=T + 5,
            )
        )
    return states


def _changes() -> list[ProgressChange]:
    return [
        ProgressChange(
            action=action,
            user_id=1,
            track_id=2,
            position_ms=position_ms,
            duration_ms=200_000,
            device_id=device_id,
            state=PlaybackState.PLAYING,
            client_updated_us=T + offset_us,
            now_us=T + 1_000_000,
            threshold_ms=100_000,
        )
        for action, position_ms, device_id, offset_us in itertools.product(
            ProgressAction, (0, 40_000, 99_999, 100_000, 150_000), ("phone", "tv"), (-1, 0, 1)
        )
    ]


@pytest.fixture
def apply_in_redis():
    client = get_redis_connection("default")
    script = client.register_script(_APPLY_ONCE_LUA)

    def apply(current: ProgressState | None, change: ProgressChange) -> tuple[ChangeVerdict, ProgressState, bool]:
        seed = ["none", *[""] * 8] if current is None else ["row", *hash_values(current)]
        reply = script(args=[*seed, change.action.value, change.position_ms, change.duration_ms, change.device_id,
                             change.state, change.client_updated_us, change.now_us, change.threshold_ms])  # fmt: skip
        state = state_from_hash(user_id=change.user_id, track_id=change.track_id, values=reply[1:9])
        return ChangeVerdict(reply[0].decode()), state, reply[9] == b"1"

    return apply


def test_the_lua_rules_answer_every_case_as_the_python_rules_do(apply_in_redis):
    cases = list(itertools.product(_current_states(), _changes()))
    assert len(cases) == 25 * 90

    differ = []
    verdicts = set()
    for current, change in cases:
        verdict, state, listen = progress_apply(current, change)
        expected = (verdict, state, listen is not None)
        if current is not None and verdict is not ChangeVerdict.APPLIED:
            # Refused: the current state comes back as it was (Lua knows no user or track ids).
            assert state is current
        if apply_in_redis(current, change) != expected:
            differ.append((current, change, expected, apply_in_redis(current, change)))
        verdicts.add(verdict)

    assert differ == []
    assert verdicts == set(ChangeVerdict)  # every branch of the rules was exercised
