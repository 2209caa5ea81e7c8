"""A show's artwork from its feed, and an episode's own image.

The feed's image is fetched (the same SSRF-checked client as feeds and episodes), checked and stored by
apps.library's artwork storage (content-addressed; the `artwork` queue makes its sizes), and also written
into the show's folder as `AlbumArt (feed).<ext>`. That name is the last the scanner ranks among folder
images (cover > folder > front > album > AlbumArt*), so the scanner stays the one owner of precedence: a
cover uploaded in the admin wins, a cover.jpg or folder.jpg someone puts next to the episodes wins, the
feed's image wins over a picture embedded in an episode, and a full rescan comes to the same cover as the
one set here right after a refresh or a download (without waiting for that rescan).

An episode's own image (its item's itunes:image, when it differs from the show's) becomes its track's
picture when the file carries none; an episode with neither shows the show's (Track.cover's fallback).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from apps.library.artwork.images import BadImage, folder_image_pick
from apps.library.artwork.storage import ArtworkStorage, StoredImage
from apps.library.models import Album, ArtworkSource, AudioFile, Track
from apps.library.services.artwork import UPLOAD_KEY_PREFIX, artwork_variants_send, artworks_upsert
from apps.podcasts.fetch import FetchError, client
from apps.podcasts.models import FeedEpisode, Subscription

logger = logging.getLogger(__name__)

FEED_IMAGE_STEM = "AlbumArt (feed)"
FEED_KEY_PREFIX = "feed:"
IMAGE_DEADLINE_S = 60.0
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def show_folder(subscription: Subscription) -> Path | None:
    if not subscription.folder_name:
        return None
    return Path(subscription.library.root_paths[0]) / subscription.folder_name


def _image_fetch(url: str) -> tuple[bytes, StoredImage]:
    """FetchError or BadImage with the reason."""
    max_bytes = settings.ARTWORK_MAX_BYTES
    with client().open(url) as response:
        if response.status != 200:
            raise FetchError(f"HTTP {response.status}")
        data = response.read(max_bytes=max_bytes, deadline_s=IMAGE_DEADLINE_S)
    stored = ArtworkStorage.from_settings().store(data, max_bytes=max_bytes, max_pixels=settings.ARTWORK_MAX_PIXELS)
    return data, stored


def show_image_update(*, subscription: Subscription) -> bool:
    """After a refresh: when the feed's image URL is new, fetch it into the show's folder and make it the
    show's cover (show_cover_apply). A failure is kept on the subscription (`image_error`), never raised:
    the refresh itself succeeded. Returns whether a new image was stored."""
    url = subscription.image_url
    folder = show_folder(subscription)
    if not url or url == subscription.image_stored_url or folder is None:
        return False
    try:
        data, stored = _image_fetch(url)
        _folder_image_write(folder, data, EXTENSIONS[stored.info.mime])
    except (FetchError, BadImage, OSError) as exc:  # OSError: the artwork or the library folder (full, read-only)
        error = f"{url[:300]}: {exc}"[:1000]
        Subscription.objects.filter(pk=subscription.pk).update(image_error=error)
        subscription.image_error = error
        logger.info("podcast %s: feed image not used: %s", subscription.pk, error)
        return False
    with transaction.atomic():
        artwork_id = artworks_upsert(images=[stored], source=ArtworkSource.FOLDER)[stored.hash]
        artwork_variants_send(artwork_ids=[artwork_id])
        Subscription.objects.filter(pk=subscription.pk).update(image_stored_url=url, image_error="")
        subscription.image_stored_url, subscription.image_error = url, ""
        show_cover_apply(subscription=subscription, artwork_id=artwork_id, content_hash=stored.hash)
    return True


def _folder_image_write(folder: Path, data: bytes, extension: str) -> Path:
    """Atomically (a hidden temp file renamed: the scanner skips hidden names), replacing the previous
    feed image, whatever its extension."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{FEED_IMAGE_STEM}{extension}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".revenge-image-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for other in EXTENSIONS.values():
        if other != extension:
            (folder / f"{FEED_IMAGE_STEM}{other}").unlink(missing_ok=True)
    return target


def show_cover_apply(
    *, subscription: Subscription, artwork_id: int | None = None, content_hash: str | None = None
) -> int:
    """Point the show's albums at the feed image if the scanner would pick it: nothing uploaded, no folder
    image ranked above it. Called after the image is stored and after each download (a show's album
    exists once its first episode is scanned). Returns how many albums changed."""
    folder = show_folder(subscription)
    if folder is None:
        return 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0  # no folder yet (or not readable: the scanner will say so)
    pick = folder_image_pick(names)
    if pick is None or not pick.startswith(FEED_IMAGE_STEM):
        return 0  # no feed image, or a cover someone put there: the scanner's choice stands
    if artwork_id is None or content_hash is None:
        try:
            data = (folder / pick).read_bytes()
            stored = ArtworkStorage.from_settings().store(
                data, max_bytes=settings.ARTWORK_MAX_BYTES, max_pixels=settings.ARTWORK_MAX_PIXELS
            )
        except (OSError, BadImage) as exc:
            logger.info("podcast %s: feed image %s not used: %s", subscription.pk, pick, exc)
            return 0
        artwork_id = artworks_upsert(images=[stored], source=ArtworkSource.FOLDER)[stored.hash]
        content_hash = stored.hash
    album_ids = (
        FeedEpisode.objects.filter(subscription=subscription, track__album__isnull=False)
        .values_list("track__album_id", flat=True)
        .distinct()
    )
    return (
        Album.objects.filter(pk__in=list(album_ids))
        .exclude(artwork_key__startswith=UPLOAD_KEY_PREFIX)
        .exclude(artwork_id=artwork_id)
        .update(artwork_id=artwork_id, artwork_key=f"{FEED_KEY_PREFIX}{content_hash}", artwork_error="")
    )


def episode_image_apply(*, episode: FeedEpisode, track: Track) -> bool:
    """A downloaded episode's own image (not the show's) as its track's picture, when its file has none.
    A failure is only logged: the episode then shows the show's cover."""
    url = episode.image_url
    if not url or url in (episode.subscription.image_url, episode.subscription.image_stored_url):
        return False
    if track.artwork_id is not None or AudioFile.objects.filter(track=track, artwork__isnull=False).exists():
        return False  # the file's own picture wins
    try:
        _data, stored = _image_fetch(url)
    except (FetchError, BadImage, OSError) as exc:
        logger.info("podcast episode %s: image %s not used: %s", episode.pk, url[:300], exc)
        return False
    with transaction.atomic():
        artwork_id = artworks_upsert(images=[stored], source=ArtworkSource.EMBEDDED)[stored.hash]
        artwork_variants_send(artwork_ids=[artwork_id])
        # On the file as if embedded: a rescan re-reads only changed files, and derives the track's
        # picture from its files' (so this survives it).
        AudioFile.objects.filter(track=track).filter(Q(artwork__isnull=True)).update(artwork_id=artwork_id)
        Track.objects.filter(pk=track.pk).update(artwork_id=artwork_id)
    track.artwork_id = artwork_id
    return True
