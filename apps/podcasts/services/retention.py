"""Retention: downloaded episodes that a subscription's rules let go are deleted (file and renditions);
their track stays (missing), with everyone's progress and listens, and the episode shows as removed and
can be downloaded again (the same file path brings the same track back)."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from apps.accounts.types import User
from apps.library.services.targeted import library_file_scan
from apps.ops.errors import DomainError
from apps.playback.models import Bookmark, PlaybackProgress
from apps.playback.progress import buffer
from apps.playback.progress.flush import progress_buffer_flush
from apps.podcasts.access import may_manage
from apps.podcasts.models import EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.subscriptions import NotAllowed
from apps.streaming.models import Rendition
from apps.streaming.storage import RenditionStorage

logger = logging.getLogger(__name__)


def episodes_retention(*, now: datetime | None = None) -> list[int]:
    """Apply every subscription's rules; returns the ids of the episodes removed."""
    now = now or timezone.now()
    # Progress sits in the Redis buffer for a few seconds: bring it to PostgreSQL first, so an episode
    # someone started a moment ago counts as in progress.
    try:
        progress_buffer_flush()
    except buffer.UNAVAILABLE as exc:
        logger.warning("podcast retention skipped: the progress buffer cannot be read (%s)", exc)
        return []
    removed: list[int] = []
    subscriptions = Subscription.objects.filter(
        Q(keep_newest__isnull=False) | Q(delete_played_after_days__isnull=False)
    ).select_related("library")
    for subscription in subscriptions:
        for episode in _doomed(subscription, now):
            episode_remove(episode=episode)
            removed.append(episode.pk)
    return removed


def _doomed(subscription: Subscription, now: datetime) -> list[FeedEpisode]:
    in_progress = PlaybackProgress.objects.filter(track=OuterRef("track"), completed=False, position_ms__gt=0)
    bookmarked = Bookmark.objects.filter(track=OuterRef("track"))
    downloaded = list(
        FeedEpisode.objects.filter(subscription=subscription, state=EpisodeState.DOWNLOADED, track__isnull=False)
        .annotate(
            protected=Exists(in_progress) | Exists(bookmarked),
            finished_at=Max("track__listens__listened_at"),
        )
        .order_by(F("published_at").desc(nulls_last=True), "-first_seen_at", "-id")
    )
    doomed: dict[int, FeedEpisode] = {}
    if subscription.keep_newest is not None:
        for episode in downloaded[subscription.keep_newest :]:
            doomed[episode.pk] = episode
    if subscription.delete_played_after_days is not None:
        cutoff = now - timedelta(days=subscription.delete_played_after_days)
        for episode in downloaded:
            finished_at = episode.finished_at
            if finished_at is not None and finished_at <= cutoff:
                doomed[episode.pk] = episode
    return [episode for episode in doomed.values() if not episode.protected]  # type: ignore[attr-defined]


def episode_remove(*, episode: FeedEpisode) -> None:
    """Delete the episode's file and renditions; the track goes missing (progress and listens stay)."""
    library = episode.subscription.library
    if episode.file_path:
        path = Path(library.root_paths[0]) / episode.file_path
        path.unlink(missing_ok=True)
        library_file_scan(library=library, path=path)
    if episode.track_id is not None:
        storage = RenditionStorage.from_settings()
        renditions = Rendition.objects.filter(track_id=episode.track_id)
        for key in set(renditions.values_list("rendition_key", flat=True)):
            shutil.rmtree(storage.folder(episode.track_id, key), ignore_errors=True)
        renditions.delete()
    FeedEpisode.objects.filter(pk=episode.pk).update(
        state=EpisodeState.REMOVED, removed_at=timezone.now(), updated_at=timezone.now()
    )
    logger.info("podcast episode %s removed (%s)", episode.pk, episode.file_path)


class EpisodeBusy(DomainError):
    status_code = 409
    code = "episode_busy"


def episode_delete(*, user: User, episode: FeedEpisode) -> None:
    """A person deletes an episode's download (OpenSubsonic deletePodcastEpisode): what retention does to it,
    on request, for someone who may manage the show's library. One being downloaded is refused (its file
    is about to appear); the episode stays listed, removed, and can be downloaded again."""
    if not may_manage(user, episode.subscription.library):
        raise NotAllowed("Not found.")
    if episode.state in (EpisodeState.QUEUED, EpisodeState.DOWNLOADING):
        raise EpisodeBusy("This episode is being downloaded; delete it once it is done.")
    episode_remove(episode=episode)
