"""Progress writes: one update (PUT, session heartbeat), many (offline batch), reset, mark played.

Every write goes through `_apply`: the Redis buffer when it is in use (one atomic Lua step; the write-mode
switch and the breaker are `buffer.buffer_attempt`), PostgreSQL in direct mode or when Redis cannot be
reached. An acknowledged write is therefore always either in Redis (flushed within PROGRESS_FLUSH_INTERVAL
seconds) or committed in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.http import Http404

from apps.ops.errors import DomainError
from apps.playback.metrics import progress_buffer_size, progress_updates
from apps.playback.models import Listen, PlaybackProgress, PlaybackState
from apps.playback.progress import buffer
from apps.playback.progress.rules import (
    POSITION_SLACK_MS,
    ChangeVerdict,
    ProgressAction,
    ProgressChange,
    ProgressState,
    completion_threshold_ms,
    now_us,
    progress_apply,
    to_us,
)
from apps.playback.progress.selectors import TrackForProgress, track_for_progress
from apps.playback.progress.store import listen_row, row_fields, state_from_row

if TYPE_CHECKING:
    from apps.accounts.types import User

SERVER_DEVICE_ID = "server"
_NOW_SORT_KEY = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ProgressOutcome:
    verdict: ChangeVerdict
    state: ProgressState

    @property
    def stale(self) -> bool:
        return self.verdict is ChangeVerdict.STALE


@dataclass(frozen=True)
class DeviceUpdate:
    """One update as a device sends it (already type-checked by the API)."""

    track_id: int
    position_ms: int
    device_id: str
    client_updated_at: datetime | None = None
    state: str | None = None


def progress_record(
    *,
    user: User,
    track_id: int,
    position_ms: int,
    device_id: str,
    client_updated_at: datetime | None = None,
    state: str | None = None,
) -> ProgressOutcome:
    """Store a device's position, or refuse it as stale (older than the stored one: 409 for the API).

    A client time in the future is clamped to the server's now: a device whose clock runs ahead would
    otherwise make every other device's updates stale until that time.
    """
    track = track_for_progress(user=user, track_id=track_id)
    limit_ms = track.duration_ms + POSITION_SLACK_MS
    if position_ms > limit_ms:
        progress_updates.labels(result="invalid").inc()
        raise DomainError(
            "Invalid input.",
            fields={"position_ms": [f"Ensure this value is less than or equal to {limit_ms} (the track's end)."]},
        )
    now = now_us()
    client_us = now if client_updated_at is None else min(to_us(client_updated_at), now)
    outcome = _apply(
        _change(ProgressAction.REPORT, user=user, track=track, position_ms=position_ms, device_id=device_id,
                state=state or PlaybackState.PLAYING, client_us=client_us, now=now),
        stored=track.stored,
    )  # fmt: skip
    progress_updates.labels(result="stale" if outcome.stale else "ok").inc()
    return outcome


def progress_record_many(*, user: User, updates: list[DeviceUpdate]) -> list[ProgressOutcome | Exception]:
    """An offline device's updates, each judged like a single PUT, in the order they happened.

    Returns, in the order given, the outcome of each or the error it met (Http404, DomainError).
    Replaying the same batch changes nothing: each update is then a replay or stale.
    """
    results: list[ProgressOutcome | Exception] = [Exception()] * len(updates)
    # Updates without a time happen "now", after every timed one.
    order = sorted(range(len(updates)), key=lambda i: updates[i].client_updated_at or _NOW_SORT_KEY)
    for index in order:
        item = updates[index]
        try:
            results[index] = progress_record(
                user=user,
                track_id=item.track_id,
                position_ms=item.position_ms,
                device_id=item.device_id,
                client_updated_at=item.client_updated_at,
                state=item.state,
            )
        except (Http404, DomainError) as error:
            results[index] = error
    return results


def progress_reset(*, user: User, track_id: int, device_id: str = SERVER_DEVICE_ID) -> ProgressState:
    """Back to the start and not completed (DELETE progress, mark unplayed). The play count stays:
    listens are history. The row stays too, so `?since=` tells the other devices."""
    return _server_action(ProgressAction.RESET, user=user, track_id=track_id, device_id=device_id)


def progress_mark_played(*, user: User, track_id: int, device_id: str = SERVER_DEVICE_ID) -> ProgressState:
    """Completed at the end. Counts one play (a Listen) unless the current play-through already did."""
    return _server_action(ProgressAction.PLAYED, user=user, track_id=track_id, device_id=device_id)


def _server_action(action: ProgressAction, *, user: User, track_id: int, device_id: str) -> ProgressState:
    track = track_for_progress(user=user, track_id=track_id)
    now = now_us()
    change = _change(action, user=user, track=track, position_ms=0, device_id=device_id,
                     state=PlaybackState.STOPPED, client_us=now, now=now)  # fmt: skip
    return _apply(change, stored=track.stored).state


def _change(
    action: ProgressAction,
    *,
    user: User,
    track: TrackForProgress,
    position_ms: int,
    device_id: str,
    state: str,
    client_us: int,
    now: int,
) -> ProgressChange:
    return ProgressChange(
        action=action,
        user_id=user.pk,
        track_id=track.track_id,
        position_ms=position_ms,
        duration_ms=track.duration_ms,
        device_id=device_id,
        state=state,
        client_updated_us=client_us,
        now_us=now,
        threshold_ms=completion_threshold_ms(kind=track.kind, duration_ms=track.duration_ms),
    )


def _apply(change: ProgressChange, *, stored: ProgressState | None) -> ProgressOutcome:
    """`stored`: the PostgreSQL row as read with the track's scope check (None: no row).

    When Redis fails, nothing is lost: this write goes to PostgreSQL, and what Redis held is flushed when it
    is back (a newer write made here wins over it there, by client time)."""
    outcome = buffer.buffer_attempt(lambda: _apply_buffered(change, stored))
    return outcome if outcome is not None else _apply_direct(change)


def _apply_buffered(change: ProgressChange, stored: ProgressState | None) -> ProgressOutcome:
    # The row travels with every write (no second round trip when Redis has no entry), and a clean entry
    # that disagrees with it is replaced by it: see buffer_record.
    verdict, state, dirty = buffer.buffer_record(change=change, seed=stored)
    progress_buffer_size.set(dirty)
    return ProgressOutcome(verdict=verdict, state=state)


def _apply_direct(change: ProgressChange) -> ProgressOutcome:
    # The row is locked while the rules run, so two devices racing are serialized: each sees the
    # other's committed write and the newest client time wins.
    for attempt in range(2):
        try:
            with transaction.atomic():
                row = (
                    PlaybackProgress.objects.select_for_update()
                    .filter(user_id=change.user_id, track_id=change.track_id)
                    .first()
                )
                verdict, state, listen = progress_apply(state_from_row(row) if row else None, change)
                if verdict is not ChangeVerdict.APPLIED:
                    return ProgressOutcome(verdict=verdict, state=state)
                if row is None:
                    # A first update racing another for the same track: the loser's unique violation
                    # rolls back this attempt, and the retry finds (and locks) the winner's row.
                    PlaybackProgress.objects.create(
                        user_id=change.user_id, track_id=change.track_id, **row_fields(state)
                    )
                else:
                    PlaybackProgress.objects.filter(pk=row.pk).update(**row_fields(state))
                if listen is not None:
                    Listen.objects.bulk_create([listen_row(listen)], ignore_conflicts=True)
                return ProgressOutcome(verdict=verdict, state=state)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")
