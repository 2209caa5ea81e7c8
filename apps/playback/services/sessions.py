"""Playback sessions: a device starts playing a track, sends heartbeats, stops; beat closes the silent ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import Http404
from django.utils import timezone
from rest_framework import status

from apps.library.models import AudioFile, Chapter, Track
from apps.ops.errors import DomainError
from apps.playback.models import PlaybackSession, PlaybackState
from apps.playback.progress.selectors import progress_get
from apps.playback.progress.services import ProgressOutcome, progress_record
from apps.streaming.services import stream_start

if TYPE_CHECKING:
    from apps.accounts.types import User

# Forward movement counts as listening up to the wall-clock time between two heartbeats (plus this
# much for the jitter of clients and networks): a seek forward is not listening.
LISTEN_SLACK_MS = 2000


class SessionEnded(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "session_ended"


@dataclass(frozen=True)
class SessionStart:
    session: PlaybackSession
    resume_position_ms: int | None
    stream: dict[str, Any]
    chapters: list[Chapter]


def session_start(
    *, user: User, track_id: int, device_id: str, codecs: list[str] | None = None, max_bitrate_kbps: int | None = None
) -> SessionStart:
    """Open a session (ending the device's previous one) with where to resume and how to stream."""
    track = (
        Track.objects.visible_to(user)
        .prefetch_related(
            Prefetch("files", queryset=AudioFile.objects.order_by("root", "path")),
            Prefetch("chapters", queryset=Chapter.objects.order_by("index")),
        )
        .filter(pk=track_id)
        .first()
    )
    if track is None:
        raise Http404("No such track.")
    _, progress = progress_get(user=user, track_id=track_id)
    resume_position_ms = progress.resume_position_ms if progress else None
    now = timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                PlaybackSession.objects.filter(user=user, device_id=device_id, ended_at__isnull=True).update(
                    ended_at=now, state=PlaybackState.STOPPED
                )
                session = PlaybackSession.objects.create(
                    user=user,
                    track=track,
                    device_id=device_id,
                    state=PlaybackState.PLAYING,
                    position_ms=resume_position_ms or 0,
                    started_at=now,
                    last_seen_at=now,
                )
            break
        except IntegrityError:
            # Another start from the same device committed in between: end that one instead.
            if attempt:
                raise
    # The streaming app's own start: the decision, renditions queued when HLS is needed, the start counted.
    # From where it resumes: a long track not transcoded yet is made from the chunk holding that point first.
    decision = stream_start(
        user=user, track=track, codecs=codecs, max_bitrate_kbps=max_bitrate_kbps, position_ms=resume_position_ms
    )
    return SessionStart(
        session=session,
        resume_position_ms=resume_position_ms,
        stream=decision.as_dict(),
        chapters=list(track.chapters.all()),
    )


def session_heartbeat(
    *, session: PlaybackSession, position_ms: int, state: str, client_updated_at: datetime | None = None
) -> tuple[PlaybackSession, ProgressOutcome]:
    """Move the progress (the same rules as a PUT) and add up the time listened since the last heartbeat.

    A stale heartbeat (another device moved on) changes nothing and is answered like a stale PUT.
    """
    if session.ended_at is not None:
        raise SessionEnded("This session has ended; start a new one.")
    outcome = progress_record(
        user=session.user,
        track_id=session.track_id,
        position_ms=position_ms,
        device_id=session.device_id,
        client_updated_at=client_updated_at,
        state=state,
    )
    if outcome.stale:
        return session, outcome
    now = timezone.now()
    with transaction.atomic():
        locked = PlaybackSession.objects.select_for_update().get(pk=session.pk)
        if locked.ended_at is not None:
            raise SessionEnded("This session has ended; start a new one.")
        if locked.state == PlaybackState.PLAYING:
            elapsed_ms = max(0, int((now - locked.last_seen_at).total_seconds() * 1000))
            locked.listened_ms += min(max(0, position_ms - locked.position_ms), elapsed_ms + LISTEN_SLACK_MS)
        locked.position_ms = position_ms
        locked.state = state
        locked.last_seen_at = now
        locked.save(update_fields=["listened_ms", "position_ms", "state", "last_seen_at"])
    return locked, outcome


def session_end(*, session: PlaybackSession) -> PlaybackSession:
    PlaybackSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(), state=PlaybackState.STOPPED
    )
    try:
        session.refresh_from_db()
    except PlaybackSession.DoesNotExist:  # deleted meanwhile (its track or user went away)
        raise Http404("No such session.") from None
    return session


def sessions_close_idle() -> int:
    """End the open sessions without a heartbeat for PLAYBACK_SESSION_IDLE_TIMEOUT seconds (beat)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.PLAYBACK_SESSION_IDLE_TIMEOUT_S)
    return PlaybackSession.objects.filter(ended_at__isnull=True, last_seen_at__lt=cutoff).update(
        ended_at=now, state=PlaybackState.STOPPED
    )
