"""The scanner: library roots on disk → AudioFile, Track, Album and Chapter rows.

Pass 1 walks the roots (`os.scandir` + stat) and compares with what is known, loaded in one query:
a file whose (size, mtime_ns) did not change is not opened. Pass 2 reads new and changed files with
mutagen and upserts them, one statement per batch. Pass 3 rebuilds the tracks whose files changed.
Which tracks need it is decided from the database, not remembered from pass 2: every group whose
stored fingerprint differs from what its files say now is rebuilt. `Library.tracks_stale` is set before
pass 2 writes anything and cleared after pass 3, so a scan that died in between is completed by the
next one, and a second run of the same scan changes nothing.

Writes go through hand-written `INSERT ... SELECT FROM unnest(...) ON CONFLICT` statements rather than
`bulk_create`: one round trip per batch with arrays as parameters, where the ORM spent more time
building SQL for 500 rows than PostgreSQL spent storing them (bench/scan.py: 1 100 → see README).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.library.artwork.images import ImageInfo
from apps.library.artwork.storage import StoredImage
from apps.library.models import Album, ArtworkSource, Library, Track
from apps.library.scanner.grouping import FileRow, TrackSpec, build_track, fingerprint, group_keys, join_path
from apps.library.scanner.lyrics import sidecar_key
from apps.library.scanner.reader import read_all
from apps.library.scanner.walk import FoundFile, walk_roots
from apps.library.services.artwork import artworks_upsert, covers_resolve, picture_rules
from apps.library.services.libraries import library_folders_assert_safe
from apps.ops.db import bulk_cursor

logger = logging.getLogger(__name__)

WRITE_BATCH = 500
GROUP_BATCH = 1000
MAX_ERROR_MESSAGES = 50

# (phase, done, total): phase is "walk", "read" or "group"; total is 0 while unknown.
ProgressCallback = Callable[[str, int, int], None]

T = TypeVar("T")


@dataclass
class ScanResult:
    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0
    restored: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    changed_track_ids: list[int] = field(default_factory=list)
    # Covers whose variants are still to make (sent to the `artwork` queue after the scan).
    artwork_ids: list[int] = field(default_factory=list)

    def problem(self, path: str, message: str) -> None:
        self.errors += 1
        if len(self.error_messages) < MAX_ERROR_MESSAGES:
            self.error_messages.append(f"{path}: {message}")

    def counters(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "missing": self.missing,
            "restored": self.restored,
            "errors": self.errors,
            "error_messages": self.error_messages,
            "tracks_changed": len(self.changed_track_ids),
        }


_KNOWN_SQL = """
SELECT root, path, id, size_bytes, mtime_ns, missing, group_key, NULLIF(error, ''), lyrics_sidecar
FROM library_audiofile WHERE library_id = %s
"""
# Positions in a _KNOWN_SQL row. Plain tuples, not named ones: an unchanged rescan is mostly this loop,
# and building 100 000 NamedTuples costs more than the query that returns them.
_ID, _SIZE, _MTIME, _MISSING, _GROUP, _ERROR, _SIDECAR = 2, 3, 4, 5, 6, 7, 8


def library_scan(*, library: Library, progress: ProgressCallback | None = None) -> ScanResult:
    """Bring the database in line with the library's folders. Safe to repeat; never stops on a bad file.

    Raises LibraryFoldersRefused, before reading anything, if a folder is one no library may have (it was
    saved before the rule existed, or a symlink now leads elsewhere)."""
    library_folders_assert_safe(library=library)
    report = progress or (lambda phase, done, total: None)
    result = ScanResult()
    # The walk runs in a thread while this one loads what is known: the walk spends its time in
    # scandir/stat system calls, which release the GIL, so the query and the walk overlap. (An
    # unchanged rescan is these two things only.) The walk thread touches neither the database nor
    # `report`, whose heartbeat writes would open a second connection.
    found: list[FoundFile] = []
    images: list[FoundFile] = []  # candidate covers, met by the same walk
    sidecars: list[FoundFile] = []  # <name>.lrc / <name>.txt lyrics, likewise
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-walk") as walker:
        walking = walker.submit(
            found.extend,
            walk_roots(
                list(library.root_paths),
                on_problem=result.problem,
                on_image=images.append,
                on_sidecar=sidecars.append,
            ),
        )
        with bulk_cursor() as cursor:
            cursor.execute(_KNOWN_SQL, [library.pk], binary=True)
            known = {(row[0], row[1]): row for row in cursor.fetchall()}
        while True:
            try:
                walking.result(timeout=1.0)
                break
            except FuturesTimeout:
                report("walk", len(found), 0)  # a long walk (a big NAS) still shows it is moving
    report("walk", len(found), len(found))
    result.seen = len(found)
    keys = group_keys(library.kind, found)
    sidecar_keys = _sidecar_keys(sidecars)

    to_read: list[FoundFile] = []
    restored_ids: list[int] = []
    regrouped: list[tuple[int, str]] = []
    for found_file in found:
        path_key = (found_file.root, found_file.path)
        old = known.get(path_key)
        if old is None:
            result.added += 1
            to_read.append(found_file)
            continue
        if old[_MISSING]:
            result.restored += 1
        if (
            old[_SIZE] != found_file.size_bytes
            or old[_MTIME] != found_file.mtime_ns
            or old[_SIDECAR] != sidecar_keys.get((found_file.root, _stem(found_file.path)), "")
        ):
            result.updated += 1
            to_read.append(found_file)
            continue
        if old[_MISSING]:
            restored_ids.append(old[_ID])
        else:
            result.unchanged += 1
        if old[_ERROR]:
            result.problem(found_file.path, old[_ERROR])
        if old[_GROUP] != keys[path_key]:
            regrouped.append((old[_ID], keys[path_key]))

    seen_paths = {(f.root, f.path) for f in found}
    gone_ids = [old[_ID] for path, old in known.items() if not old[_MISSING] and path not in seen_paths]
    if to_read or restored_ids or regrouped or gone_ids:
        Library.objects.filter(pk=library.pk).update(tracks_stale=True)
        library.tracks_stale = True
    vanished = _read_and_store(library, to_read, keys, result, report)
    gone_ids += [known[path][_ID] for path in vanished if path in known and not known[path][_MISSING]]
    result.missing = len(gone_ids)

    if restored_ids or gone_ids or regrouped:
        _mark_files(restored_ids=restored_ids, gone_ids=gone_ids, regrouped=regrouped)
    files_changed = library.tracks_stale
    if library.tracks_stale:
        result.changed_track_ids = tracks_sync(library=library, progress=report)
    result.artwork_ids = covers_resolve(library=library, images=images, files_changed=files_changed)
    return result


def _stem(path: str) -> str:
    dot = path.rfind(".")
    return path[:dot] if dot > path.rfind("/") else path


def _sidecar_keys(sidecars: list[FoundFile]) -> dict[tuple[str, str], str]:
    """(root, path without extension) → the key the reader records for that audio file's sidecars."""
    found: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
    for sidecar in sidecars:
        stem = _stem(sidecar.path)
        found[(sidecar.root, stem)].append((sidecar.path[len(stem) :].lower(), sidecar.size_bytes, sidecar.mtime_ns))
    return {key: sidecar_key(entries) for key, entries in found.items()}


def _mark_files(*, restored_ids: list[int], gone_ids: list[int], regrouped: list[tuple[int, str]]) -> None:
    """Files back on disk, files gone, files now in another group: one transaction, no file re-read."""
    now = timezone.now()
    with transaction.atomic(), bulk_cursor() as cursor:
        if restored_ids:
            cursor.execute(
                "UPDATE library_audiofile SET missing = false, updated_at = %s WHERE id = ANY(%s)", [now, restored_ids]
            )
        if gone_ids:
            cursor.execute(
                "UPDATE library_audiofile SET missing = true, updated_at = %s WHERE id = ANY(%s)", [now, gone_ids]
            )
        if regrouped:
            cursor.execute(
                "UPDATE library_audiofile AS f SET group_key = r.group_key, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::text[]) AS r(id, group_key) WHERE f.id = r.id",
                [now, [id_ for id_, _ in regrouped], [key for _, key in regrouped]],
            )


_UPSERT_FILES_SQL = """
INSERT INTO library_audiofile (
    library_id, root, path, group_key, size_bytes, mtime_ns, format, codec, bitrate_kbps, sample_rate_hz,
    channels, duration_ms, truncated, tags, embedded_chapters, error, artwork_id, artwork_error, lyrics,
    lyrics_error, lyrics_sidecar, missing, scanned_at, created_at, updated_at
)
SELECT %(library)s, r.root, r.path, r.group_key, r.size_bytes, r.mtime_ns, r.format, r.codec, r.bitrate_kbps,
       r.sample_rate_hz, r.channels, r.duration_ms, r.truncated, r.tags::jsonb, r.chapters::jsonb, r.error,
       r.artwork_id, r.artwork_error, r.lyrics::jsonb, r.lyrics_error, r.lyrics_sidecar, false,
       %(now)s, %(now)s, %(now)s
FROM unnest(
    %(root)b::text[], %(path)b::text[], %(group_key)b::text[], %(size_bytes)b::bigint[], %(mtime_ns)b::bigint[],
    %(format)b::text[], %(codec)b::text[], %(bitrate_kbps)b::integer[], %(sample_rate_hz)b::integer[],
    %(channels)b::smallint[], %(duration_ms)b::bigint[], %(truncated)b::boolean[], %(tags)b::text[],
    %(chapters)b::text[], %(error)b::text[], %(artwork_id)b::bigint[], %(artwork_error)b::text[],
    %(lyrics)b::text[], %(lyrics_error)b::text[], %(lyrics_sidecar)b::text[]
) AS r(root, path, group_key, size_bytes, mtime_ns, format, codec, bitrate_kbps, sample_rate_hz, channels,
       duration_ms, truncated, tags, chapters, error, artwork_id, artwork_error, lyrics, lyrics_error,
       lyrics_sidecar)
ON CONFLICT (library_id, root, path) DO UPDATE SET
    group_key = EXCLUDED.group_key, size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns,
    format = EXCLUDED.format, codec = EXCLUDED.codec, bitrate_kbps = EXCLUDED.bitrate_kbps,
    sample_rate_hz = EXCLUDED.sample_rate_hz, channels = EXCLUDED.channels, duration_ms = EXCLUDED.duration_ms,
    truncated = EXCLUDED.truncated, tags = EXCLUDED.tags, embedded_chapters = EXCLUDED.embedded_chapters,
    error = EXCLUDED.error,
    -- A picture that cannot be used leaves the file's previous one (and says why in artwork_error).
    artwork_id = CASE WHEN EXCLUDED.artwork_error <> '' THEN library_audiofile.artwork_id ELSE EXCLUDED.artwork_id END,
    artwork_error = EXCLUDED.artwork_error, lyrics = EXCLUDED.lyrics, lyrics_error = EXCLUDED.lyrics_error,
    lyrics_sidecar = EXCLUDED.lyrics_sidecar,
    missing = false, scanned_at = EXCLUDED.scanned_at, updated_at = EXCLUDED.updated_at
"""
_FILE_COLUMNS = (
    "root", "path", "group_key", "size_bytes", "mtime_ns", "format", "codec", "bitrate_kbps", "sample_rate_hz",
    "channels", "duration_ms", "truncated", "tags", "chapters", "error", "artwork_id", "artwork_error",
    "lyrics", "lyrics_error", "lyrics_sidecar",
)  # fmt: skip


def _read_and_store(
    library: Library,
    to_read: list[FoundFile],
    keys: dict[tuple[str, str], str],
    result: ScanResult,
    report: ProgressCallback,
) -> set[tuple[str, str]]:
    """Read new and changed files and upsert them; return the files that vanished before we read them."""
    vanished: set[tuple[str, str]] = set()
    jobs = [(join_path(f.root, f.path), f.size_bytes) for f in to_read]
    values_in_order = read_all(jobs, workers=settings.LIBRARY_SCAN_WORKERS, pictures=picture_rules())
    done = 0
    for batch in _chunks(to_read, WRITE_BATCH):
        columns: dict[str, list[Any]] = {name: [] for name in _FILE_COLUMNS}
        batch_values = []
        for found_file, values in zip(batch, values_in_order, strict=False):
            if values is None:
                vanished.add((found_file.root, found_file.path))
                continue
            batch_values.append((found_file, values))
        # The pictures the reader stored, one Artwork row per hash (14 tracks with one cover: one row), in the
        # transaction that references them: one commit per batch instead of two, and the rows stay locked
        # against artwork_collect until the files point at them.
        with transaction.atomic():
            artwork_ids = artworks_upsert(
                images=(
                    StoredImage(
                        values["artwork_hash"],
                        ImageInfo(values["artwork_mime"], values["artwork_width"], values["artwork_height"]),
                        values["artwork_bytes"],
                    )
                    for _, values in batch_values
                    if values["artwork_hash"]
                ),
                source=ArtworkSource.EMBEDDED,
            )
            for found_file, values in batch_values:
                if values["error"]:
                    result.problem(found_file.path, values["error"])
                values["artwork_id"] = artwork_ids.get(values["artwork_hash"] or "")
                values.update(
                    root=found_file.root,
                    path=found_file.path,
                    group_key=keys[(found_file.root, found_file.path)],
                    size_bytes=found_file.size_bytes,
                    mtime_ns=found_file.mtime_ns,
                )
                for name in _FILE_COLUMNS:
                    columns[name].append(values[name])
            if columns["path"]:
                with bulk_cursor() as cursor:
                    cursor.execute(_UPSERT_FILES_SQL, {"library": library.pk, "now": timezone.now(), **columns})
        done += len(batch)
        report("read", done, len(to_read))
    return vanished


def tracks_sync(*, library: Library, progress: ProgressCallback | None = None) -> list[int]:
    """Rebuild every track whose files say something else than the track row. Returns the ids of
    tracks that are new or whose sources changed (and can be played): the transcoder's work list."""
    report = progress or (lambda phase, done, total: None)
    by_group: dict[str, list[tuple[str, int, int, bool, bool]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT group_key, root, path, size_bytes, mtime_ns, missing, error <> '' "
            "FROM library_audiofile WHERE library_id = %s",
            [library.pk],
        )
        for group_key, root, path, size, mtime, missing, has_error in cursor.fetchall():
            by_group[group_key].append((join_path(root, path), size, mtime, missing, has_error))
        cursor.execute(
            "SELECT group_key, source_fingerprint, missing FROM library_track WHERE library_id = %s", [library.pk]
        )
        stored = {group_key: (fingerprint_, missing) for group_key, fingerprint_, missing in cursor.fetchall()}
    dirty = []
    for group_key, files in by_group.items():
        playable = any(not missing and not error for _, _, _, missing, error in files)
        expected = fingerprint((path, size, mtime) for path, size, mtime, missing, _ in files if not missing)
        current = stored.get(group_key)
        if current is None:
            if playable:
                dirty.append(group_key)
        elif (playable and current != (expected, False)) or (not playable and not current[1]):
            dirty.append(group_key)
    orphans = [key for key, (_, missing) in stored.items() if key not in by_group and not missing]
    if orphans:
        gone = Track.objects.filter(library=library, group_key__in=orphans)
        album_ids = set(gone.exclude(album=None).values_list("album_id", flat=True))
        gone.update(missing=True, updated_at=timezone.now())
        _refresh_albums(album_ids)  # their albums' counts, durations, artists and genres

    changed: list[int] = []
    unsplit = frozenset(settings.LIBRARY_UNSPLIT_NAMES)
    for done, batch in enumerate(_chunks(sorted(dirty), GROUP_BATCH), start=1):
        changed.extend(_rebuild_groups(library, batch, unsplit))
        report("group", min(done * GROUP_BATCH, len(dirty)), len(dirty))
    Library.objects.filter(pk=library.pk).update(tracks_stale=False)
    library.tracks_stale = False
    return changed


_GROUP_FILES_SQL = """
SELECT id, root, path, format, duration_ms, tags, embedded_chapters, error, missing, size_bytes, mtime_ns, artwork_id,
       group_key
FROM library_audiofile WHERE library_id = %s AND group_key = ANY(%s)
"""
_UPSERT_TRACKS_SQL = """
INSERT INTO library_track (
    library_id, group_key, album_id, title, artists, album_artist, album_artists, genres, disc_number,
    disc_subtitle, track_number, year, published_at, description, duration_ms, tags, source_fingerprint, artwork_id,
    missing, created_at, updated_at
)
SELECT %(library)s, r.group_key, r.album_id, r.title,
       r.artists::text[], r.album_artist, r.album_artists::text[], r.genres::text[], r.disc_number,
       r.disc_subtitle, r.track_number, r.year, r.published_at, r.description,
       r.duration_ms, r.tags::jsonb, r.fingerprint, r.artwork_id, false, %(now)s, %(now)s
FROM unnest(
    %(group_key)b::text[], %(album_id)b::bigint[], %(title)b::text[], %(artists)b::text[], %(album_artist)b::text[],
    %(album_artists)b::text[], %(genres)b::text[], %(disc_number)b::smallint[], %(disc_subtitle)b::text[],
    %(track_number)b::integer[], %(year)b::smallint[], %(published_at)b::timestamptz[], %(description)b::text[],
    %(duration_ms)b::bigint[], %(tags)b::text[], %(fingerprint)b::text[], %(artwork_id)b::bigint[]
) AS r(group_key, album_id, title, artists, album_artist, album_artists, genres, disc_number, disc_subtitle,
       track_number, year, published_at, description, duration_ms, tags, fingerprint, artwork_id)
ON CONFLICT (library_id, group_key) DO UPDATE SET
    album_id = EXCLUDED.album_id, title = EXCLUDED.title, artists = EXCLUDED.artists,
    album_artist = EXCLUDED.album_artist, album_artists = EXCLUDED.album_artists, genres = EXCLUDED.genres,
    disc_number = EXCLUDED.disc_number, disc_subtitle = EXCLUDED.disc_subtitle,
    track_number = EXCLUDED.track_number, year = EXCLUDED.year, published_at = EXCLUDED.published_at,
    description = EXCLUDED.description, duration_ms = EXCLUDED.duration_ms,
    tags = EXCLUDED.tags, source_fingerprint = EXCLUDED.source_fingerprint, artwork_id = EXCLUDED.artwork_id,
    missing = false, updated_at = EXCLUDED.updated_at
RETURNING id, group_key
"""
_LINK_FILES_SQL = """
UPDATE library_audiofile AS f SET track_id = t.track_id
FROM unnest(%(group_key)b::text[], %(track_id)b::bigint[]) AS t(group_key, track_id)
WHERE f.library_id = %(library)s AND f.group_key = t.group_key AND f.track_id IS DISTINCT FROM t.track_id
"""
_INSERT_CHAPTERS_SQL = """
INSERT INTO library_chapter (track_id, index, title, start_ms, end_ms)
SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::bigint[], %s::bigint[])
"""


def _rebuild_groups(library: Library, group_keys_: Sequence[str], unsplit: frozenset[str]) -> list[int]:
    files_by_group: dict[str, list[FileRow]] = defaultdict(list)
    # A track shows the embedded picture of its first file (by path) that has one, written with the track: a
    # separate UPDATE of 2 000 new tracks' artwork_id (indexed, so no HOT update: every index and the generated
    # search columns again) was 0.13-0.35 s of a 2 000-file scan with covers (make bench-scan BENCH_COVERS=1).
    pictures: dict[str, tuple[str, str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_GROUP_FILES_SQL, [library.pk, list(group_keys_)])
        # Django's backend hands jsonb over as text (JSONField decodes it); decode it here likewise.
        for id_, root, path, format_, duration_ms, tags, chapters, *rest, artwork_id, group_key in cursor.fetchall():
            row = FileRow(id_, root, path, format_, duration_ms, json.loads(tags), json.loads(chapters), *rest)
            files_by_group[group_key].append(row)
            first = pictures.get(group_key)
            if artwork_id is not None and not row.missing and (first is None or (root, path) < first[:2]):
                pictures[group_key] = (root, path, artwork_id)
        cursor.execute(
            "SELECT group_key, source_fingerprint, album_id FROM library_track "
            "WHERE library_id = %s AND group_key = ANY(%s)",
            [library.pk, list(group_keys_)],
        )
        previous = {group_key: (fingerprint_, album_id) for group_key, fingerprint_, album_id in cursor.fetchall()}
    specs: list[TrackSpec] = []
    unplayable: list[str] = []
    for group_key in group_keys_:
        spec = build_track(library.kind, group_key, files_by_group.get(group_key, []), unsplit=unsplit)
        if spec is None:
            unplayable.append(group_key)
        else:
            specs.append(spec)
    fingerprints = {
        spec.group_key: fingerprint(
            (join_path(f.root, f.path), f.size_bytes, f.mtime_ns)
            for f in files_by_group[spec.group_key]
            if not f.missing
        )
        for spec in specs
    }

    now = timezone.now()
    with transaction.atomic(), bulk_cursor() as cursor:
        albums = _upsert_albums(library, specs)
        columns: dict[str, list[Any]] = defaultdict(list)
        for spec in specs:
            album = albums.get((spec.album_title, spec.album_album_artist)) if spec.album_title else None
            columns["group_key"].append(spec.group_key)
            columns["album_id"].append(album.pk if album else None)
            columns["title"].append(spec.title)
            columns["artists"].append(_array_literal(spec.artists))
            columns["album_artist"].append(spec.album_artist)
            columns["album_artists"].append(_array_literal(spec.album_artists))
            columns["disc_subtitle"].append(spec.disc_subtitle)
            columns["published_at"].append(spec.published_at)
            columns["description"].append(spec.description)
            columns["genres"].append(_array_literal(spec.genres))
            columns["disc_number"].append(spec.disc_number)
            columns["track_number"].append(spec.track_number)
            columns["year"].append(spec.year)
            columns["duration_ms"].append(spec.duration_ms)
            columns["tags"].append(json.dumps(spec.tags, ensure_ascii=False))
            columns["fingerprint"].append(fingerprints[spec.group_key])
            picture = pictures.get(spec.group_key)
            columns["artwork_id"].append(picture[2] if picture else None)
        track_ids: dict[str, int] = {}
        if specs:
            cursor.execute(_UPSERT_TRACKS_SQL, {"library": library.pk, "now": now, **columns})
            track_ids = {group_key: track_id for track_id, group_key in cursor.fetchall()}
        if unplayable:
            cursor.execute(
                "UPDATE library_track SET missing = true, updated_at = %s "
                "WHERE library_id = %s AND group_key = ANY(%s)",
                [now, library.pk, unplayable],
            )
        if track_ids:
            cursor.execute(
                _LINK_FILES_SQL,
                {"library": library.pk, "group_key": list(track_ids), "track_id": list(track_ids.values())},
            )
        cursor.execute("DELETE FROM library_chapter WHERE track_id = ANY(%s)", [list(track_ids.values())])
        chapter_rows = [
            (track_ids[spec.group_key], index, chapter["title"], chapter["start_ms"], chapter["end_ms"])
            for spec in specs
            for index, chapter in enumerate(spec.chapters)
        ]
        if chapter_rows:
            cursor.execute(_INSERT_CHAPTERS_SQL, [list(column) for column in zip(*chapter_rows, strict=True)])
        touched_albums = {album.pk for album in albums.values()} | {
            album_id for _, album_id in previous.values() if album_id
        }
        _refresh_albums(touched_albums)

    return [
        track_ids[spec.group_key]
        for spec in specs
        if spec.group_key not in previous or previous[spec.group_key][0] != fingerprints[spec.group_key]
    ]


def _upsert_albums(library: Library, specs: Sequence[TrackSpec]) -> dict[tuple[str, str], Album]:
    """One row per (title, album artist); counts, artists and genres are filled by _refresh_albums."""
    wanted: dict[tuple[str, str], Album] = {}
    for spec in specs:
        if not spec.album_title:
            continue
        key = (spec.album_title, spec.album_album_artist)
        if key not in wanted:
            wanted[key] = Album(
                library=library,
                title=spec.album_title,
                album_artist=spec.album_album_artist,
                album_artists=spec.album_artists if spec.album_album_artist else [],
                release_type=spec.release_type,
                author=spec.author,
            )
        album = wanted[key]
        album.year = album.year or spec.year
        album.compilation = album.compilation or spec.compilation
        album.release_type = album.release_type or spec.release_type
        album.author = album.author or spec.author
    if wanted:
        Album.objects.bulk_create(
            list(wanted.values()),
            update_conflicts=True,
            unique_fields=["library", "title", "album_artist"],
            update_fields=["year", "album_artists", "compilation", "release_type", "author", "updated_at"],
        )
    return wanted


_REFRESH_ALBUMS_SQL = """
UPDATE library_album AS album
SET track_count = stats.track_count,
    duration_ms = stats.duration_ms,
    artists = stats.artists,
    genres = stats.genres
FROM (
    SELECT ids.id,
           count(track.id) AS track_count,
           coalesce(sum(track.duration_ms), 0) AS duration_ms,
           coalesce((SELECT array_agg(DISTINCT name) FROM library_track t, unnest(t.artists) AS name
                     WHERE t.album_id = ids.id AND NOT t.missing), '{}') AS artists,
           coalesce((SELECT array_agg(DISTINCT name) FROM library_track t, unnest(t.genres) AS name
                     WHERE t.album_id = ids.id AND NOT t.missing), '{}') AS genres
    FROM unnest(%s::bigint[]) AS ids(id)
    LEFT JOIN library_track AS track ON track.album_id = ids.id AND NOT track.missing
    GROUP BY ids.id
) AS stats
WHERE album.id = stats.id
"""


def _refresh_albums(album_ids: set[int]) -> None:
    """Counts, duration, artists and genres from the album's listed tracks; albums left without any
    track row go (one statement each, whatever the number of albums)."""
    if not album_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_ALBUMS_SQL, [sorted(album_ids)])
    Album.objects.filter(id__in=album_ids, tracks__isnull=True).delete()


def _array_literal(values: list[str]) -> str:
    """A PostgreSQL text[] literal: arrays of arrays cannot go through unnest() as parameters."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
