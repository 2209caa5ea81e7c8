"""Collect covers nothing shows any more: Artwork rows that no album, track or file (nor any other model that
points at Artwork, such as a podcast show's) has referenced for ARTWORK_COLLECT_GRACE_S, with their original
and variants. A beat task (`artwork-collect`, every 6 hours) runs it.

A cover becomes unreferenced when a file's picture or an album's folder image changes, a library is deleted
or an uploaded cover is replaced. The grace period counts from the first run that saw it unreferenced
(`unreferenced_since`), so a cover put back within it (a rescan of a folder that was briefly moved, an undone
edit) keeps its row, its id and its variants.

No check-then-act against a scan about to reference the same hash:
- rows: candidates are locked with FOR UPDATE SKIP LOCKED and deleted by a second statement that checks the
  references again with a fresh snapshot. A scan takes the row lock itself with artworks_upsert (ON CONFLICT DO
  UPDATE) in the transaction that writes its references, so a row being referenced is either skipped or
  waited for; a row deleted first is inserted again by the scan's upsert. The foreign keys stay the last word:
  a reference that got through anyway fails this batch's commit (kept for the next run), never a scan.
- files: see apps.library.artwork.storage (moved aside, then judged by mtime; a scan refreshes the mtime of a
  cover it meets); variants are moved aside and given back if the hash has a row again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignObjectRel
from django.utils import timezone

from apps.library.artwork.storage import ArtworkStorage
from apps.library.models import Artwork

logger = logging.getLogger(__name__)

COLLECT_BATCH = 500


@dataclass
class CollectResult:
    marked: int = 0  # found unreferenced for the first time (the grace period starts)
    unmarked: int = 0  # referenced again
    deleted: int = 0  # rows deleted
    files_deleted: int = 0  # originals deleted
    kept: int = 0  # rows deleted but their original kept: a scan met it within the grace period


def _referenced_sql() -> str:
    """`EXISTS (...) OR ...` over every foreign key to Artwork, read from the models: a model that adds one
    (another app's) protects its covers without a change here."""
    checks = []
    for relation in Artwork._meta.get_fields(include_hidden=True):
        if isinstance(relation, ForeignObjectRel) and (relation.one_to_many or relation.one_to_one):
            table = relation.related_model._meta.db_table
            column = relation.field.column
            checks.append(f'EXISTS (SELECT 1 FROM "{table}" WHERE "{column}" = a.id)')
    return "(" + " OR ".join(checks) + ")"


def artworks_collect(*, now: datetime | None = None, grace_s: int | None = None) -> CollectResult:
    """Mark covers found unreferenced, unmark those referenced again, delete those unreferenced for longer than
    the grace period, then their files. Safe to run at any time, beside scans, twice at once."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ARTWORK_COLLECT_GRACE_S if grace_s is None else grace_s)
    referenced = _referenced_sql()
    result = CollectResult()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE library_artwork AS a SET unreferenced_since = NULL "
            f"WHERE a.unreferenced_since IS NOT NULL AND {referenced}"
        )
        result.unmarked = cursor.rowcount
        cursor.execute(
            f"UPDATE library_artwork AS a SET unreferenced_since = %s "
            f"WHERE a.unreferenced_since IS NULL AND NOT {referenced}",
            [now],
        )
        result.marked = cursor.rowcount

    storage = ArtworkStorage.from_settings()
    last_id = 0
    while True:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT a.id FROM library_artwork AS a "
                    f"WHERE a.id > %s AND a.unreferenced_since < %s AND NOT {referenced} "
                    f"ORDER BY a.id LIMIT %s FOR UPDATE SKIP LOCKED",
                    [last_id, cutoff, COLLECT_BATCH],
                )
                ids = [id_ for (id_,) in cursor.fetchall()]
                if not ids:
                    break
                last_id = ids[-1]
                # A new statement, a new snapshot: references committed since the SELECT's are seen.
                cursor.execute(
                    f"DELETE FROM library_artwork AS a WHERE a.id = ANY(%s) AND NOT {referenced} RETURNING a.hash",
                    [ids],
                )
                hashes = [content_hash for (content_hash,) in cursor.fetchall()]
        except IntegrityError:
            logger.warning("artwork collection: a cover was referenced while being deleted; kept for the next run")
            continue
        result.deleted += len(hashes)
        _files_collect(storage, hashes, untouched_since=cutoff.timestamp(), result=result)
        if len(ids) < COLLECT_BATCH:
            break
    if result.deleted or result.marked:
        logger.info(
            "artwork collection: %d marked, %d unmarked, %d deleted (%d originals deleted, %d kept)",
            result.marked,
            result.unmarked,
            result.deleted,
            result.files_deleted,
            result.kept,
        )
    return result


def _files_collect(
    storage: ArtworkStorage, hashes: list[str], *, untouched_since: float, result: CollectResult
) -> None:
    """The deleted rows' originals and variants, after their rows' commit."""
    gone = []
    for content_hash in hashes:
        if storage.original_discard(content_hash, untouched_since=untouched_since):
            result.files_deleted += 1
            gone.append(content_hash)
        else:
            result.kept += 1  # a scan met it: its variants stay for the row the scan is writing
    taken = {content_hash: storage.variants_take(content_hash) for content_hash in gone}
    # Judged after the move: a row inserted since (the cover found again, its variants published again) keeps
    # them; one inserted later has its variants made again from the original the scan wrote.
    alive = set(Artwork.objects.filter(hash__in=list(taken)).values_list("hash", flat=True))
    for content_hash, aside in taken.items():
        if aside is None:
            continue
        if content_hash in alive:
            storage.variants_give_back(content_hash, aside)
        else:
            shutil.rmtree(aside, ignore_errors=True)
