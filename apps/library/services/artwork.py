"""Artwork writes: the covers a scan found (rows for stored images, which cover each track and album shows),
the variants a worker makes, and an admin's upload.

Sources per album, first that exists: an uploaded cover (it wins and survives rescans), a folder image next to
its files (cover.*, folder.*, front.*, album.*, AlbumArt*; for a book any image in its folder), the embedded
picture of its first track that has one. A bad image is recorded on the album with the reason and the previous
good cover stays. A track shows its own embedded picture, else its album's (a podcast episode, its show's).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.library.artwork.images import BadImage, folder_image_pick
from apps.library.artwork.storage import ArtworkStorage, StoredImage
from apps.library.artwork.variants import variants_write
from apps.library.models import Album, Artwork, ArtworkSource, ArtworkStatus, Library, LibraryKind
from apps.library.scanner.reader import PictureRules
from apps.library.scanner.walk import FoundFile
from apps.ops.db import bulk_cursor

logger = logging.getLogger(__name__)

VARIANTS_TASK = "apps.library.tasks.artwork_variants_task"
# None: the queue comes from CELERY_TASK_ROUTES (`artwork`). Tests point it at a queue of their own.
VARIANTS_QUEUE: str | None = None
VARIANTS_BATCH = 20
FOLDER_ERROR_PREFIX = "folder image "
UPLOAD_KEY_PREFIX = "upload:"


def picture_rules() -> PictureRules:
    return PictureRules(
        artwork_root=Path(settings.ARTWORK_ROOT),
        max_bytes=settings.ARTWORK_MAX_BYTES,
        max_pixels=settings.ARTWORK_MAX_PIXELS,
    )


_UPSERT_ARTWORK_SQL = """
INSERT INTO library_artwork (hash, mime, width, height, size_bytes, source, status, color, error, created_at)
SELECT r.hash, r.mime, r.width, r.height, r.size_bytes, %(source)s, 'pending', '', '', now()
FROM unnest(%(hash)b::text[], %(mime)b::text[], %(width)b::integer[], %(height)b::integer[],
            %(size_bytes)b::bigint[]) AS r(hash, mime, width, height, size_bytes)
-- DO UPDATE, not DO NOTHING: it returns the existing row's id, and locks that row until the caller's transaction
-- ends, so artwork_collect (which skips locked rows) cannot delete a cover that is about to be referenced.
ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash
RETURNING id, hash
"""


def artworks_upsert(*, images: Iterable[StoredImage], source: str) -> dict[str, int]:
    """One Artwork row per stored image (by hash; an existing row is kept as it is). Returns hash → id.
    Call it in the transaction that writes the references: the rows stay locked until then (artwork_collect)."""
    unique = {image.hash: image for image in images}
    if not unique:
        return {}
    rows = sorted(unique.values(), key=lambda row: row.hash)  # locked in one order: two scans never deadlock
    with bulk_cursor() as cursor:
        cursor.execute(
            _UPSERT_ARTWORK_SQL,
            {
                "source": source,
                "hash": [row.hash for row in rows],
                "mime": [row.info.mime for row in rows],
                "width": [row.info.width for row in rows],
                "height": [row.info.height for row in rows],
                "size_bytes": [row.size_bytes for row in rows],
            },
        )
        return {content_hash: id_ for id_, content_hash in cursor.fetchall()}


def images_fingerprint(images: Iterable[FoundFile]) -> str:
    digest = hashlib.sha256()
    for image in sorted(images):
        digest.update(f"{image.root}\0{image.path}\0{image.size_bytes}\0{image.mtime_ns}\n".encode())
    return digest.hexdigest()


_TRACK_ARTWORK_SQL = """
UPDATE library_track AS t SET artwork_id = s.artwork_id
FROM (
    SELECT track.id,
           (SELECT f.artwork_id FROM library_audiofile AS f
            WHERE f.track_id = track.id AND NOT f.missing AND f.artwork_id IS NOT NULL
            ORDER BY f.root, f.path LIMIT 1) AS artwork_id
    FROM library_track AS track WHERE track.library_id = %s
) AS s
WHERE t.id = s.id AND t.artwork_id IS DISTINCT FROM s.artwork_id
"""
_ALBUM_FILES_SQL = """
SELECT t.album_id, f.root, f.path, t.artwork_id, f.artwork_error
FROM library_track AS t JOIN library_audiofile AS f ON f.track_id = t.id
WHERE t.library_id = %s AND NOT t.missing AND NOT f.missing AND t.album_id IS NOT NULL
ORDER BY t.album_id, t.disc_number NULLS LAST, t.track_number NULLS LAST, t.id, f.root, f.path
"""


# One statement for every album whose cover changed: bulk_update's CASE WHEN over 200 albums cost 0.24 s of
# a 2 000-file scan (make bench-scan BENCH_COVERS=1), this a few ms.
_ALBUMS_ARTWORK_SQL = """
UPDATE library_album AS a
SET artwork_id = v.artwork_id, artwork_key = v.artwork_key, artwork_error = v.artwork_error
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS v(id, artwork_id, artwork_key, artwork_error)
WHERE a.id = v.id
"""


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def covers_resolve(*, library: Library, images: list[FoundFile], files_changed: bool) -> list[int]:
    """Point every track and album of the library at its cover, after a scan. Reads only the folder images that
    are new or changed (by path, size and mtime). Returns the ids of artworks whose variants are still to make.
    Does nothing when neither a file nor a folder image changed since the last scan."""
    fingerprint = images_fingerprint(images)
    if not files_changed and fingerprint == library.artwork_fingerprint:
        return []
    storage = ArtworkStorage.from_settings()
    rules = picture_rules()
    by_folder: dict[tuple[str, str], dict[str, FoundFile]] = defaultdict(dict)
    for image in images:
        by_folder[(image.root, _folder(image.path))][image.path.rsplit("/", 1)[-1]] = image

    with connection.cursor() as cursor:
        cursor.execute(_TRACK_ARTWORK_SQL, [library.pk])
        cursor.execute(_ALBUM_FILES_SQL, [library.pk])
        rows = cursor.fetchall()
    folders: dict[int, list[tuple[str, str]]] = defaultdict(list)
    embedded: dict[int, int] = {}
    file_errors: dict[int, list[str]] = defaultdict(list)
    for album_id, root, path, track_artwork_id, artwork_error in rows:
        folder = (root, _folder(path))
        if folder not in folders[album_id]:
            folders[album_id].append(folder)
        if track_artwork_id is not None:
            embedded.setdefault(album_id, track_artwork_id)
        if artwork_error:
            file_errors[album_id].append(f"{path.rsplit('/', 1)[-1]}: {artwork_error}")

    any_image = library.kind == LibraryKind.AUDIOBOOK
    albums = list(Album.objects.filter(id__in=list(folders)).only("id", "artwork_id", "artwork_key", "artwork_error"))
    before = {album.pk: (album.artwork_id, album.artwork_key, album.artwork_error) for album in albums}
    # Folder images read now, their rows written below in one statement (not one per album).
    folder_covers: list[tuple[Album, StoredImage]] = []
    for album in albums:
        if album.artwork_key.startswith(UPLOAD_KEY_PREFIX):
            continue  # an admin's choice: no scan replaces it
        candidate = None
        for folder in folders[album.pk]:
            name = folder_image_pick(list(by_folder.get(folder, {})), any_image=any_image)
            if name is not None:
                candidate = by_folder[folder][name]
                break
        errors = list(file_errors.get(album.pk, []))[:5]
        if candidate is None:
            album.artwork_id = embedded.get(album.pk)
            album.artwork_key = f"embedded:{album.artwork_id}" if album.artwork_id else ""
        else:
            key = f"folder:{candidate.root}/{candidate.path}:{candidate.size_bytes}:{candidate.mtime_ns}"[:2200]
            if key == album.artwork_key:
                # Read before (same path, size and mtime): the same cover, or the same reason not to use it.
                errors += [line for line in album.artwork_error.splitlines() if line.startswith(FOLDER_ERROR_PREFIX)]
            else:
                try:
                    folder_covers.append((album, _folder_image_store(storage, rules, candidate)))
                except BadImage as exc:
                    errors.append(f"{FOLDER_ERROR_PREFIX}{candidate.path}: {exc}")
                    # The previous good cover stays; an album without one shows its embedded picture.
                    album.artwork_id = album.artwork_id or embedded.get(album.pk)
                album.artwork_key = key
        album.artwork_error = "\n".join(errors)

    with transaction.atomic():
        if any_image:
            _books_resolve(library, by_folder, storage, rules)
        if folder_covers:
            ids = artworks_upsert(images=[stored for _, stored in folder_covers], source=ArtworkSource.FOLDER)
            for album, stored in folder_covers:
                album.artwork_id = ids[stored.hash]
        changed = [a for a in albums if (a.artwork_id, a.artwork_key, a.artwork_error) != before[a.pk]]
        if changed:
            with connection.cursor() as cursor:
                cursor.execute(
                    _ALBUMS_ARTWORK_SQL,
                    [
                        [album.pk for album in changed],
                        [album.artwork_id for album in changed],
                        [album.artwork_key for album in changed],
                        [album.artwork_error for album in changed],
                    ],
                )
        Library.objects.filter(pk=library.pk).update(artwork_fingerprint=fingerprint)
    library.artwork_fingerprint = fingerprint
    return list(Artwork.objects.filter(status=ArtworkStatus.PENDING).values_list("id", flat=True))


_BOOK_FOLDERS_SQL = """
SELECT DISTINCT ON (t.id) t.id, f.root, f.path, t.artwork_id
FROM library_track AS t JOIN library_audiofile AS f ON f.track_id = t.id
WHERE t.library_id = %s AND NOT t.missing AND NOT f.missing
ORDER BY t.id, f.root, f.path
"""


def _books_resolve(
    library: Library,
    by_folder: dict[tuple[str, str], dict[str, FoundFile]],
    storage: ArtworkStorage,
    rules: PictureRules,
) -> None:
    """A book (one track, most often without an album) shows the image in its folder, else its embedded one."""
    with connection.cursor() as cursor:
        cursor.execute(_BOOK_FOLDERS_SQL, [library.pk])
        rows = cursor.fetchall()
    found: list[tuple[int, int | None, StoredImage]] = []
    for track_id, root, path, artwork_id in rows:
        images = by_folder.get((root, _folder(path)), {})
        name = folder_image_pick(list(images), any_image=True)
        if name is None:
            continue
        try:
            found.append((track_id, artwork_id, _folder_image_store(storage, rules, images[name])))
        except BadImage:
            continue  # the album's error says why (covers_resolve); the embedded picture stays
    if not found:
        return
    ids = artworks_upsert(images=[stored for _, _, stored in found], source=ArtworkSource.FOLDER)
    updates = [(track_id, ids[stored.hash]) for track_id, artwork_id, stored in found if ids[stored.hash] != artwork_id]
    if updates:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE library_track AS t SET artwork_id = v.artwork_id "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, artwork_id) WHERE t.id = v.id",
                [[track_id for track_id, _ in updates], [artwork_id for _, artwork_id in updates]],
            )


def _folder_image_store(storage: ArtworkStorage, rules: PictureRules, image: FoundFile) -> StoredImage:
    if image.size_bytes > rules.max_bytes:
        raise BadImage(f"image of {image.size_bytes / 1e6:.1f} MB, over the {rules.max_bytes / 1e6:.1f} MB limit")
    try:
        data = Path(image.root, image.path).read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read: {exc.strerror or exc}") from None
    return storage.store(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)


def artwork_variants_send(*, artwork_ids: list[int]) -> None:
    """Queue the variants of these artworks on the `artwork` queue, once the transaction commits."""
    ids = sorted(set(artwork_ids))
    for start in range(0, len(ids), VARIANTS_BATCH):
        transaction.on_commit(partial(_variants_send, ids[start : start + VARIANTS_BATCH]))


def _variants_send(artwork_ids: list[int]) -> None:
    current_app.send_task(VARIANTS_TASK, kwargs={"artwork_ids": artwork_ids}, queue=VARIANTS_QUEUE)


def artwork_variants_build(*, artwork_id: int) -> str | None:
    """Make every size of one artwork in a temp folder, publish it with one rename, mark the row ready with its
    dominant colour. Idempotent: a published folder is not made again. Returns the status, None if no row."""
    artwork = Artwork.objects.filter(pk=artwork_id).first()
    if artwork is None:
        return None
    if artwork.status == ArtworkStatus.READY:
        return artwork.status
    storage = ArtworkStorage.from_settings()
    target = storage.folder(artwork.hash)
    tmp = storage.tmp_root / f"{artwork.hash}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        color = variants_write(storage.original(artwork.hash), tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            # Another worker published the same bytes first: theirs is identical.
    except Exception as exc:  # noqa: BLE001 - Pillow and the disk raise many kinds; recorded on the row
        logger.warning("artwork %s: variants not made", artwork.hash, exc_info=True)
        Artwork.objects.filter(pk=artwork.pk).update(
            status=ArtworkStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return ArtworkStatus.FAILED
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Artwork.objects.filter(pk=artwork.pk).update(status=ArtworkStatus.READY, color=color, error="")
    return ArtworkStatus.READY


def album_cover_upload(*, album: Album, data: bytes) -> Artwork:
    """An admin's cover for an album: checked like a scanned one (ValidationError with the reason otherwise),
    stored the same way; it wins over folder and embedded images and survives rescans."""
    rules = picture_rules()
    try:
        stored = ArtworkStorage.from_settings().store(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)
    except BadImage as exc:
        raise ValidationError({"image": [str(exc)]}) from None
    with transaction.atomic():
        artwork_id = artworks_upsert(images=[stored], source=ArtworkSource.UPLOAD)[stored.hash]
        Album.objects.filter(pk=album.pk).update(
            artwork_id=artwork_id, artwork_key=f"{UPLOAD_KEY_PREFIX}{stored.hash}", artwork_error=""
        )
        artwork_variants_send(artwork_ids=[artwork_id])
    album.refresh_from_db()
    return Artwork.objects.get(pk=artwork_id)
