"""Progress writes: one update (PUT, session heartbeat), many (offline batch), reset, mark played.

Every write goes through `_apply`: the Redis buffer in buffered mode (one atomic Lua step), PostgreSQL in
direct mode or when Redis cannot be reached. An acknowledged write is therefore always either in Redis
(flushed within PROGRESS_FLUSH_INTERVAL seconds) or committed in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404

from apps.ops.errors import DomainError
from apps.playback import buffer
from apps.playback.metrics import progress_buffer_size, progress_updates
from apps.playback.models import Listen, PlaybackProgress, PlaybackState
from apps.playback.rules import (
    POSITION_SLACK_MS,
    Op,
    ProgressState,
    Result,
    Update,
    completion_threshold_ms,
    from_us,
    now_us,
    progress_apply,
    to_us,
)
from apps.playback.selectors import ProgressTarget, progress_state_of, progress_target

SERVER_DEVICE_ID = "server"
_NOW_SORT_KEY = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ProgressOutcome:
    result: Result
    state: ProgressState

    @property
    def stale(self) -> bool:
        return self.result is Result.STALE


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
    user,
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
    target = progress_target(user=user, track_id=track_id)
    return _record(user=user, target=target, position_ms=position_ms, device_id=device_id,
                   client_updated_at=client_updated_at, state=state)  # fmt: skip


def _record(
    *,
    user,
    target: ProgressTarget,
    position_ms: int,
    device_id: str,
    client_updated_at: datetime | None,
    state: str | None,
) -> ProgressOutcome:
    limit_ms = target.duration_ms + POSITION_SLACK_MS
    if position_ms > limit_ms:
        progress_updates.labels(result="invalid").inc()
        raise DomainError(
            "Invalid input.",
            fields={"position_ms": [f"Ensure this value is less than or equal to {limit_ms} (the track's end)."]},
        )
    now = now_us()
    client_us = now if client_updated_at is None else min(to_us(client_updated_at), now)
    update = Update(
        op=Op.UPDATE,
        user_id=user.pk,
        track_id=target.track_id,
        position_ms=position_ms,
        duration_ms=target.duration_ms,
        device_id=device_id,
        state=state or PlaybackState.PLAYING,
        client_updated_us=client_us,
        now_us=now,
        threshold_ms=completion_threshold_ms(kind=target.kind, duration_ms=target.duration_ms),
    )
    outcome = _apply(update, stored=target.stored)
    progress_updates.labels(result="stale" if outcome.stale else "ok").inc()
    return outcome


def progress_record_many(*, user, updates: list[DeviceUpdate]) -> list[ProgressOutcome | Exception]:
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


def progress_reset(*, user, track_id: int, device_id: str = SERVER_DEVICE_ID) -> ProgressState:
    """Back to the start and not completed (DELETE progress, mark unplayed). The play count stays:
    listens are history. The row stays too, so `?since=` tells the other devices."""
    return _server_action(Op.RESET, user=user, track_id=track_id, device_id=device_id)


def progress_mark_played(*, user, track_id: int, device_id: str = SERVER_DEVICE_ID) -> ProgressState:
    """Completed at the end. Counts one play (a Listen) unless the current play-through already did."""
    return _server_action(Op.PLAYED, user=user, track_id=track_id, device_id=device_id)


def _server_action(op: Op, *, user, track_id: int, device_id: str) -> ProgressState:
    target = progress_target(user=user, track_id=track_id)
    now = now_us()
    update = Update(
        op=op,
        user_id=user.pk,
        track_id=track_id,
        position_ms=0,
        duration_ms=target.duration_ms,
        device_id=device_id,
        state=PlaybackState.STOPPED,
        client_updated_us=now,
        now_us=now,
        threshold_ms=completion_threshold_ms(kind=target.kind, duration_ms=target.duration_ms),
    )
    return _apply(update, stored=target.stored).state


def _apply(update: Update, *, stored: ProgressState | None) -> ProgressOutcome:
    """`stored`: the PostgreSQL row as read with the track's scope check (None: no row)."""
    if settings.PROGRESS_WRITE_MODE == "buffered" and buffer.buffer_usable():
        try:
            return _apply_buffered(update, stored)
        except buffer.UNAVAILABLE as error:
            # Nothing is lost: this write goes to PostgreSQL, and what Redis held is flushed when it is
            # back (a newer write made here wins over it there, by client time).
            buffer.buffer_failed(error)
    return _apply_direct(update)


def _apply_buffered(update: Update, stored: ProgressState | None) -> ProgressOutcome:
    # The row travels with every write (no second round trip when Redis has no entry), and a clean entry
    # that disagrees with it is replaced by it: see buffer_record.
    result, state, dirty = buffer.buffer_record(update=update, seed=stored)
    progress_buffer_size.set(dirty)
    return ProgressOutcome(result=result, state=state)


def _apply_direct(update: Update) -> ProgressOutcome:
    # The row is locked while the rules run, so two devices racing are serialized: each sees the
    # other's committed write and the newest client time wins.
    for attempt in range(2):
        try:
            with transaction.atomic():
                row = (
                    PlaybackProgress.objects.select_for_update()
                    .filter(user_id=update.user_id, track_id=update.track_id)
                    .first()
                )
                result, state, listen = progress_apply(progress_state_of(row) if row else None, update)
                assert state is not None
                if result is not Result.OK:
                    return ProgressOutcome(result=result, state=state)
                fields = {
                    "position_ms": state.position_ms,
                    "duration_ms": state.duration_ms,
                    "completed": state.completed,
                    "play_count": state.play_count,
                    "device_id": state.device_id,
                    "state": state.state,
                    "client_updated_at": from_us(state.client_updated_us),
                    "updated_at": from_us(state.updated_us),
                }
                if row is None:
                    # A first update racing another for the same track: the loser's unique violation
                    # rolls back this attempt, and the retry finds (and locks) the winner's row.
                    PlaybackProgress.objects.create(user_id=update.user_id, track_id=update.track_id, **fields)
                else:
                    PlaybackProgress.objects.filter(pk=row.pk).update(**fields)
                if listen is not None:
                    Listen.objects.bulk_create(
                        [
                            Listen(
                                user_id=listen.user_id,
                                track_id=listen.track_id,
                                play_number=listen.play_number,
                                device_id=listen.device_id,
                                position_ms=listen.position_ms,
                                listened_at=from_us(listen.listened_us),
                            )
                        ],
                        ignore_conflicts=True,
                    )
                return ProgressOutcome(result=result, state=state)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")
