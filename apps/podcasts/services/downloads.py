"""Episode downloads: queue, fetch into a hidden part file (resumed with Range after a failure), check it
is audio, rename it into the show's folder, register it with a targeted scan, attach feed chapters.

The part file lives in `<library root>/.revenge-downloads/` (the scanner skips hidden entries, so a partial
file is never a track, and the final rename stays on one filesystem: atomic). Its validator (ETag or
Last-Modified) sits beside it, so a resumed request asks `If-Range` and a file that changed on the server
starts over instead of being spliced.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import mutagen
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from mutagen import MutagenError

from apps.library.models import Chapter, Library, Track
from apps.library.services.targeted import library_file_scan
from apps.ops.db import advisory_lock_try
from apps.podcasts.feeds import chapters_parse, safe_name
from apps.podcasts.fetch import FetchError, FetchRefused, TooLarge, client
from apps.podcasts.models import EpisodeState, FeedEpisode
from apps.podcasts.services.artwork import episode_image_apply, show_cover_apply
from apps.podcasts.services.dispatch import DOWNLOAD_TASK, task_send

logger = logging.getLogger(__name__)

PARTS_DIR = ".revenge-downloads"
CHAPTERS_MAX_BYTES = 1024 * 1024
LOCK_NAMESPACE = 0x506F6443 << 32  # "PodC": apart from the other advisory locks (track ids, flush)
# mutagen's file type → the extension the file gets (the scanner reads these).
EXTENSIONS = {
    "MP3": ".mp3", "EasyMP3": ".mp3", "MP4": ".m4a", "EasyMP4": ".m4a", "OggVorbis": ".ogg", "OggOpus": ".opus",
    "FLAC": ".flac", "WAVE": ".wav", "AAC": ".aac",
}  # fmt: skip


class DownloadFailed(Exception):
    """Permanent: the episode is marked failed (retrying would fetch the same answer)."""


class DownloadInterrupted(Exception):
    """Transient: the part file is kept and the task retries, resuming where it stopped."""


@dataclass
class DownloadResult:
    state: str
    track_id: int | None = None
    error: str = ""
    resumed_from_bytes: int = 0


def episodes_download_request(
    *,
    episode_ids: Iterable[int],
    states: Iterable[str] = (EpisodeState.AVAILABLE, EpisodeState.FAILED, EpisodeState.REMOVED),
) -> list[int]:
    """Queue the episodes that are in one of `states` (a conditional UPDATE: one already queued or being
    downloaded is left alone); one task each, after commit. Returns the ids queued."""
    ids = list(episode_ids)
    if not ids:
        return []
    with transaction.atomic():
        # Locked, then changed: a concurrent request waits and finds them queued already.
        queued = list(
            FeedEpisode.objects.select_for_update()
            .filter(pk__in=ids, state__in=list(states))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        FeedEpisode.objects.filter(pk__in=queued).update(
            state=EpisodeState.QUEUED, download_error="", updated_at=timezone.now()
        )
    for pk in queued:
        task_send(DOWNLOAD_TASK, pk)
    return queued


def parts_folder(library: Library) -> Path:
    return Path(library.root_paths[0]) / PARTS_DIR


def _lock_key(episode_id: int) -> int:
    """The advisory lock a download holds (session-level: it goes with the worker's connection if the
    worker dies, so episodes_reclaim can tell a dead download from a slow one)."""
    return LOCK_NAMESPACE + episode_id


def episode_download(*, episode_id: int) -> DownloadResult:
    """Run one download (the task's body). Raises DownloadInterrupted for a transient failure (the task
    retries and resumes); records a permanent one on the episode."""
    with advisory_lock_try(_lock_key(episode_id)) as mine:
        if not mine:
            return DownloadResult(state="skipped")  # another worker is on it
        return _download(episode_id)


def _download(episode_id: int) -> DownloadResult:
    claimed = FeedEpisode.objects.filter(
        pk=episode_id, state__in=[EpisodeState.QUEUED, EpisodeState.DOWNLOADING]
    ).update(state=EpisodeState.DOWNLOADING, download_attempts=F("download_attempts") + 1, updated_at=timezone.now())
    if not claimed:
        return DownloadResult(state="skipped")
    episode = FeedEpisode.objects.select_related("subscription__library").get(pk=episode_id)
    library = episode.subscription.library
    part = parts_folder(library) / f"{episode.pk}.part"
    try:
        resumed_from = _fetch(episode, part)
        extension = _audio_extension(part)
        final = _place(episode, part, extension)
    except DownloadFailed as exc:
        part.unlink(missing_ok=True)
        _validator_path(part).unlink(missing_ok=True)
        FeedEpisode.objects.filter(pk=episode.pk).update(
            state=EpisodeState.FAILED, download_error=str(exc)[:2000], updated_at=timezone.now()
        )
        logger.info("podcast episode %s failed: %s", episode.pk, exc)
        return DownloadResult(state=EpisodeState.FAILED, error=str(exc))
    track = library_file_scan(library=library, path=final)
    if track is None:
        # Read by mutagen above but not by the scanner: it is not playable for Revenge either.
        final.unlink(missing_ok=True)
        library_file_scan(library=library, path=final)
        FeedEpisode.objects.filter(pk=episode.pk).update(
            state=EpisodeState.FAILED, download_error="the file could not be read as audio", updated_at=timezone.now()
        )
        return DownloadResult(state=EpisodeState.FAILED, error="the file could not be read as audio")
    _chapters_attach(episode, track)
    FeedEpisode.objects.filter(pk=episode.pk).update(
        state=EpisodeState.DOWNLOADED,
        track=track,
        file_path=final.relative_to(library.root_paths[0]).as_posix(),
        downloaded_at=timezone.now(),
        removed_at=None,
        download_error="",
        updated_at=timezone.now(),
    )
    # Once the episode is linked to its track: the show's album may be new with this episode.
    show_cover_apply(subscription=episode.subscription)
    episode_image_apply(episode=episode, track=track)
    return DownloadResult(state=EpisodeState.DOWNLOADED, track_id=track.pk, resumed_from_bytes=resumed_from)


def episodes_reclaim(*, idle: timedelta = timedelta(minutes=1)) -> list[int]:
    """Beat: downloads left `downloading` by a worker that died (its advisory lock is free) are queued
    again; the next run resumes the part file. The dead worker's message would only come back after the
    broker's visibility timeout (an hour)."""
    stuck = FeedEpisode.objects.filter(state=EpisodeState.DOWNLOADING, updated_at__lt=timezone.now() - idle)
    orphans = []
    for episode_id in stuck.values_list("pk", flat=True):
        with advisory_lock_try(_lock_key(episode_id)) as free:
            if free:
                orphans.append(episode_id)
    return episodes_download_request(episode_ids=orphans, states=(EpisodeState.DOWNLOADING,))


def episode_download_give_up(*, episode_id: int, error: str) -> None:
    """The task ran out of retries on transient failures: failed, with the last error; the part file goes."""
    episode = FeedEpisode.objects.select_related("subscription__library").get(pk=episode_id)
    part = parts_folder(episode.subscription.library) / f"{episode.pk}.part"
    part.unlink(missing_ok=True)
    _validator_path(part).unlink(missing_ok=True)
    FeedEpisode.objects.filter(pk=episode_id, state=EpisodeState.DOWNLOADING).update(
        state=EpisodeState.FAILED, download_error=f"gave up after retries: {error}"[:2000], updated_at=timezone.now()
    )


def _validator_path(part: Path) -> Path:
    return part.with_suffix(".json")


def _fetch(episode: FeedEpisode, part: Path) -> int:
    """Fetch the enclosure into `part`, resuming a previous attempt's bytes if the server allows. Returns
    the number of bytes the attempt resumed from."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    validator = ""
    if have:
        try:
            validator = json.loads(_validator_path(part).read_text()).get("validator", "")
        except (OSError, ValueError):
            have = 0
    headers = {"Range": f"bytes={have}-", "If-Range": validator} if have and validator else {}
    max_bytes = settings.PODCAST_EPISODE_MAX_BYTES
    try:
        with client().open(episode.enclosure_url, headers=headers) as response:
            if response.status == 404 or response.status == 410:
                raise DownloadFailed(f"the enclosure is gone (HTTP {response.status})")
            if response.status >= 500 or response.status == 429:
                raise DownloadInterrupted(f"HTTP {response.status}")
            if response.status not in (200, 206):
                raise DownloadFailed(f"HTTP {response.status}")
            content_type = response.header("Content-Type").split(";", 1)[0].strip().lower()
            if content_type in ("text/html", "application/xhtml+xml"):
                raise DownloadFailed(f"the enclosure is a web page ({content_type}), not audio")
            resumed = have if response.status == 206 else 0
            new_validator = response.header("ETag") or response.header("Last-Modified")
            _validator_path(part).write_text(json.dumps({"validator": new_validator}))
            with part.open("ab" if resumed else "wb") as sink:
                response.copy_to(sink, max_bytes=max_bytes - resumed)
                sink.flush()
                os.fsync(sink.fileno())
    except TooLarge as exc:
        raise DownloadFailed(f"{exc} (PODCAST_EPISODE_MAX_MB)") from None
    except FetchRefused as exc:
        raise DownloadFailed(str(exc)) from None
    except FetchError as exc:
        raise DownloadInterrupted(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)
            raise DownloadFailed("disk full: the library's folder has no space left") from None
        raise
    return resumed


def _audio_extension(part: Path) -> str:
    try:
        audio = mutagen.File(part)
    except (MutagenError, OSError, ValueError) as exc:
        raise DownloadFailed(f"not an audio file ({type(exc).__name__})") from None
    if audio is None or getattr(audio.info, "length", 0) <= 0:
        raise DownloadFailed("not an audio file (mutagen does not recognise it)")
    return EXTENSIONS.get(type(audio).__name__, ".mp3")


def _place(episode: FeedEpisode, part: Path, extension: str) -> Path:
    """Rename the checked part file to `<root>/<show>/<date> <title><ext>` (a name taken by another
    episode gets the episode id), atomically: the scanner sees the whole file or nothing."""
    subscription = episode.subscription
    folder = Path(subscription.library.root_paths[0]) / (subscription.folder_name or safe_name(subscription.feed_url))
    folder.mkdir(parents=True, exist_ok=True)
    date = (episode.published_at or episode.first_seen_at).strftime("%Y-%m-%d")
    stem = f"{date} {safe_name(episode.title or 'episode', limit=150)}"
    final = folder / f"{stem}{extension}"
    if final.exists() and episode.file_path != final.relative_to(subscription.library.root_paths[0]).as_posix():
        final = folder / f"{stem} ({episode.pk}){extension}"
    os.replace(part, final)
    _validator_path(part).unlink(missing_ok=True)
    return final


def _chapters_attach(episode: FeedEpisode, track: Track) -> None:
    """Podcasting 2.0 JSON chapters become the track's chapters when the file has none of its own."""
    if not episode.chapters_url or track.chapters.exists():
        return
    try:
        with client().open(episode.chapters_url) as response:
            if response.status != 200:
                return
            data = response.read(max_bytes=CHAPTERS_MAX_BYTES, deadline_s=30)
    except FetchError as exc:
        logger.info("chapters of episode %s not fetched: %s", episode.pk, exc)
        return
    chapters = chapters_parse(data, duration_ms=track.duration_ms)
    Chapter.objects.bulk_create(
        Chapter(track=track, index=index, title=c["title"], start_ms=c["start_ms"], end_ms=c["end_ms"])
        for index, c in enumerate(chapters)
    )
