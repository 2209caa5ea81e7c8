"""The flush of the Redis progress buffer to PostgreSQL (beat, every PROGRESS_FLUSH_INTERVAL seconds, and
at a clean worker shutdown).

A batch is: read up to 10 000 dirty entries (each atomically, with its version) → one statement that
upserts them all (`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE ... WHERE newer`) and inserts
their pending listens (`ON CONFLICT DO NOTHING` on (user, track, play_number)) → commit → mark clean in
Redis the entries that did not change meanwhile.

Dying anywhere is safe: before the commit nothing happened and the entries are still dirty; after it, the
retry writes the same rows again, which `WHERE newer` skips, and the same listens, which the unique
constraint skips. Play counts are absolute values, never increments, so nothing is counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.library.models import Track
from apps.ops.db import advisory_lock_try, bulk_cursor
from apps.playback.metrics import progress_buffer_size, progress_flush_rows
from apps.playback.progress import buffer
from apps.playback.progress.store import bulk_arrays

logger = logging.getLogger(__name__)

FLUSH_BATCH = 10_000
# One flush at a time (a session-level advisory lock: a flush process that dies releases it with its
# connection, unlike a lock key in Redis that would block flushes until it expired).
FLUSH_LOCK_ID = 0x52564E47_0001

_FLUSH_SQL = """
WITH listens AS (
    INSERT INTO playback_listen (user_id, track_id, play_number, device_id, position_ms, listened_at)
    SELECT l.user_id, l.track_id, l.play_number, l.device_id, l.position_ms,
           'epoch'::timestamptz + l.listened_us * interval '1 microsecond'
    FROM unnest(
        %(l_user_id)b::bigint[], %(l_track_id)b::bigint[], %(l_play_number)b::integer[], %(l_device_id)b::text[],
        %(l_position_ms)b::bigint[], %(l_listened_us)b::bigint[]
    ) AS l(user_id, track_id, play_number, device_id, position_ms, listened_us)
    WHERE EXISTS (SELECT 1 FROM {track_table} t WHERE t.id = l.track_id)
      AND EXISTS (SELECT 1 FROM {user_table} u WHERE u.id = l.user_id)
    ON CONFLICT (user_id, track_id, play_number) DO NOTHING
)
INSERT INTO playback_playbackprogress AS p (
    user_id, track_id, position_ms, duration_ms, completed, play_count, device_id, state, client_updated_at,
    updated_at
)
-- Times travel as integers of microseconds (what Redis holds): exact, and no datetime objects to build.
SELECT r.user_id, r.track_id, r.position_ms, r.duration_ms, r.completed, r.play_count, r.device_id, r.state,
       'epoch'::timestamptz + r.client_updated_us * interval '1 microsecond',
       'epoch'::timestamptz + r.updated_us * interval '1 microsecond'
FROM unnest(
    %(user_id)b::bigint[], %(track_id)b::bigint[], %(position_ms)b::bigint[], %(duration_ms)b::bigint[],
    %(completed)b::boolean[], %(play_count)b::integer[], %(device_id)b::text[], %(state)b::text[],
    %(client_updated_us)b::bigint[], %(updated_us)b::bigint[]
) AS r(user_id, track_id, position_ms, duration_ms, completed, play_count, device_id, state, client_updated_us,
       updated_us)
-- A track or user deleted since the write: its entry is dropped, not a foreign-key error for the batch.
WHERE EXISTS (SELECT 1 FROM {track_table} t WHERE t.id = r.track_id)
  AND EXISTS (SELECT 1 FROM {user_table} u WHERE u.id = r.user_id)
ON CONFLICT (user_id, track_id) DO UPDATE SET
    position_ms = EXCLUDED.position_ms, duration_ms = EXCLUDED.duration_ms, completed = EXCLUDED.completed,
    play_count = EXCLUDED.play_count, device_id = EXCLUDED.device_id, state = EXCLUDED.state,
    client_updated_at = EXCLUDED.client_updated_at, updated_at = EXCLUDED.updated_at
WHERE p.client_updated_at < EXCLUDED.client_updated_at
RETURNING p.user_id, p.track_id
"""


def _flush_sql() -> str:
    return _FLUSH_SQL.format(track_table=Track._meta.db_table, user_table=get_user_model()._meta.db_table)


def progress_buffer_write(*, entries: Sequence[buffer.BufferedEntry]) -> set[tuple[int, int]]:
    """Write buffered entries and their listens in one statement and commit; returns the (user, track)
    pairs whose row was written (the others were deleted, or PostgreSQL already held that write or a
    newer one)."""
    params = bulk_arrays([entry.state for entry in entries], [listen for entry in entries for listen in entry.listens])
    with transaction.atomic():
        # Parameters bound server-side, as the scanner does: psycopg's C dumpers build the arrays.
        with bulk_cursor() as cursor:
            cursor.execute(_flush_sql(), params)
            return {(user_id, track_id) for user_id, track_id in cursor.fetchall()}


def progress_buffer_flush(*, max_batches: int = 100) -> int | None:
    """Flush dirty buffer entries to PostgreSQL; returns how many were written (None: another flush is
    running). Raises buffer.UNAVAILABLE errors when Redis cannot be reached (the entries wait there).

    With nothing to flush (most of the time: beat calls this every few seconds) it costs one SCARD and no
    PostgreSQL round trip."""
    dirty_count = buffer.buffer_dirty_count()
    if not dirty_count:
        progress_buffer_size.set(0)
        return 0
    written = 0
    with advisory_lock_try(FLUSH_LOCK_ID) as acquired:
        if not acquired:
            return None
        for _ in range(max_batches):
            entries = buffer.buffer_snapshot(limit=FLUSH_BATCH)
            if not entries:
                progress_buffer_size.set(buffer.buffer_dirty_count())
                break
            applied = progress_buffer_write(entries=entries)
            dirty = buffer.buffer_ack(
                acks=[
                    (
                        entry.member,
                        entry.version,
                        max((listen.play_number for listen in entry.listens), default=0),
                        (entry.state.user_id, entry.state.track_id) in applied,
                    )
                    for entry in entries
                ]
            )
            progress_flush_rows.observe(len(entries))
            progress_buffer_size.set(dirty)
            written += len(entries)
            if len(entries) < FLUSH_BATCH:
                break
    if written:
        logger.info("progress flush: %d entries", written)
    return written
