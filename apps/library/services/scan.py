"""The scanner: library roots on disk → AudioFile, Track, Album and Chapter rows.

Pass 1 walks the roots (`os.scandir` + stat) and compares with what is known, loaded in one query:
a file whose (size, mtime_ns) did not change is not opened. Pass 2 reads new and changed files with
mutagen and upserts them in batches. Pass 3 rebuilds the tracks whose files changed. Which tracks need
it is decided from the database, not remembered from pass 2: every group whose stored fingerprint
differs from what its files say now is rebuilt. So a scan that died between passes is completed by the
next one, and running a scan twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.library.models import Album, AudioFile, Chapter, Library, Track
from apps.library.scanner.grouping import TrackSpec, build_track, fingerprint, group_keys, join_path
from apps.library.scanner.metadata import UnreadableFile, read_metadata
from apps.library.scanner.walk import FoundFile, walk_roots

logger = logging.getLogger(__name__)

WRITE_BATCH = 500
GROUP_BATCH = 500
MAX_ERROR_MESSAGES = 50

# (phase, done, total): phase is "walk", "read" or "group"; total is 0 while unknown.
ProgressCallback = Callable[[str, int, int], None]

T = TypeVar("T")

_FILE_DATA_FIELDS = [
    "group_key",
    "size_bytes",
    "mtime_ns",
    "format",
    "codec",
    "bitrate_kbps",
    "sample_rate_hz",
    "channels",
    "duration_ms",
    "tags",
    "embedded_chapters",
    "error",
    "missing",
    "scanned_at",
    "updated_at",
]
_TRACK_DATA_FIELDS = [
    "album",
    "title",
    "artists",
    "album_artist",
    "genres",
    "disc_number",
    "track_number",
    "year",
    "duration_ms",
    "tags",
    "source_fingerprint",
    "missing",
    "updated_at",
]


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


@dataclass(frozen=True, slots=True)
class _Known:
    id: int
    size_bytes: int
    mtime_ns: int
    missing: bool
    group_key: str
    error: str


def library_scan(*, library: Library, progress: ProgressCallback | None = None) -> ScanResult:
    """Bring the database in line with the library's folders. Safe to repeat; never stops on a bad file."""
    report = progress or (lambda phase, done, total: None)
    result = ScanResult()
    known = {
        (root, path): _Known(id_, size, mtime, missing, group_key, error)
        for id_, root, path, size, mtime, missing, group_key, error in AudioFile.objects.filter(
            library=library
        ).values_list("id", "root", "path", "size_bytes", "mtime_ns", "missing", "group_key", "error")
    }

    found: list[FoundFile] = []
    for found_file in walk_roots(list(library.root_paths), on_problem=result.problem):
        found.append(found_file)
        if len(found) % 1000 == 0:
            report("walk", len(found), 0)
    report("walk", len(found), len(found))
    result.seen = len(found)
    keys = group_keys(library.kind, found)

    to_read: list[FoundFile] = []
    restored_ids: list[int] = []
    regrouped: list[AudioFile] = []
    for found_file in found:
        path_key = (found_file.root, found_file.path)
        old = known.get(path_key)
        if old is None:
            result.added += 1
            to_read.append(found_file)
            continue
        if old.missing:
            result.restored += 1
        if old.size_bytes != found_file.size_bytes or old.mtime_ns != found_file.mtime_ns:
            result.updated += 1
            to_read.append(found_file)
            continue
        if old.missing:
            restored_ids.append(old.id)
        else:
            result.unchanged += 1
        if old.error:
            result.problem(found_file.path, old.error)
        if old.group_key != keys[path_key]:
            regrouped.append(AudioFile(id=old.id, group_key=keys[path_key]))

    seen_paths = {(f.root, f.path) for f in found}
    vanished = _read_and_store(library, to_read, keys, result, report)
    gone_ids = [
        old.id for path, old in known.items() if not old.missing and (path not in seen_paths or path in vanished)
    ]
    result.missing = len(gone_ids)

    with transaction.atomic():
        for batch in _chunks(restored_ids, 5000):
            AudioFile.objects.filter(id__in=batch).update(missing=False, updated_at=timezone.now())
        for batch in _chunks(gone_ids, 5000):
            AudioFile.objects.filter(id__in=batch).update(missing=True, updated_at=timezone.now())
        AudioFile.objects.bulk_update(regrouped, ["group_key"], batch_size=1000)

    result.changed_track_ids = tracks_sync(library=library, progress=report)
    return result


def _read_and_store(
    library: Library,
    to_read: list[FoundFile],
    keys: dict[tuple[str, str], str],
    result: ScanResult,
    report: ProgressCallback,
) -> set[tuple[str, str]]:
    """Read new and changed files and upsert them; return the files that vanished before we read them."""
    vanished: set[tuple[str, str]] = set()
    done = 0
    for batch in _chunks(to_read, WRITE_BATCH):
        rows = []
        now = timezone.now()
        for found_file in batch:
            row = AudioFile(
                library=library,
                root=found_file.root,
                path=found_file.path,
                group_key=keys[(found_file.root, found_file.path)],
                size_bytes=found_file.size_bytes,
                mtime_ns=found_file.mtime_ns,
                missing=False,
                scanned_at=now,
            )
            try:
                _fill_metadata(row, found_file)
            except FileNotFoundError:
                vanished.add((found_file.root, found_file.path))
                continue
            if row.error:
                result.problem(found_file.path, row.error)
            rows.append(row)
        AudioFile.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["library", "root", "path"],
            update_fields=_FILE_DATA_FIELDS,
        )
        done += len(batch)
        report("read", done, len(to_read))
    return vanished


def _fill_metadata(row: AudioFile, found_file: FoundFile) -> None:
    try:
        metadata = read_metadata(found_file.absolute_path, found_file.size_bytes)
    except FileNotFoundError:
        raise
    except UnreadableFile as exc:
        row.error = str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - mutagen raises all sorts on corrupt data; record it, go on
        logger.warning("unexpected error reading %s", found_file.absolute_path, exc_info=True)
        row.error = f"unreadable ({type(exc).__name__}: {exc})"[:500]
        return
    row.error = ""
    row.format = metadata.format
    row.codec = metadata.codec
    row.bitrate_kbps = metadata.bitrate_kbps
    row.sample_rate_hz = metadata.sample_rate_hz
    row.channels = metadata.channels
    row.duration_ms = metadata.duration_ms
    row.tags = metadata.tags
    row.embedded_chapters = metadata.chapters


def tracks_sync(*, library: Library, progress: ProgressCallback | None = None) -> list[int]:
    """Rebuild every track whose files say something else than the track row. Returns the ids of
    tracks that are new or whose sources changed (and can be played): the transcoder's work list."""
    report = progress or (lambda phase, done, total: None)
    by_group: dict[str, list[tuple[str, int, int, bool, bool]]] = defaultdict(list)
    for group_key, root, path, size, mtime, missing, error in AudioFile.objects.filter(library=library).values_list(
        "group_key", "root", "path", "size_bytes", "mtime_ns", "missing", "error"
    ):
        by_group[group_key].append((join_path(root, path), size, mtime, missing, bool(error)))
    stored = {
        group_key: (fingerprint_, missing)
        for group_key, fingerprint_, missing in Track.objects.filter(library=library).values_list(
            "group_key", "source_fingerprint", "missing"
        )
    }
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
        Track.objects.filter(library=library, group_key__in=orphans).update(missing=True, updated_at=timezone.now())

    changed: list[int] = []
    unsplit = frozenset(settings.LIBRARY_UNSPLIT_NAMES)
    for done, batch in enumerate(_chunks(sorted(dirty), GROUP_BATCH), start=1):
        changed.extend(_rebuild_groups(library, batch, unsplit))
        report("group", min(done * GROUP_BATCH, len(dirty)), len(dirty))
    return changed


def _rebuild_groups(library: Library, group_keys_: Sequence[str], unsplit: frozenset[str]) -> list[int]:
    files_by_group: dict[str, list[AudioFile]] = defaultdict(list)
    for audio_file in AudioFile.objects.filter(library=library, group_key__in=group_keys_).only(
        "id", "root", "path", "group_key", "format", "duration_ms", "tags", "embedded_chapters", "error",
        "missing", "size_bytes", "mtime_ns",
    ):  # fmt: skip
        files_by_group[audio_file.group_key].append(audio_file)
    previous = {
        track.group_key: track
        for track in Track.objects.filter(library=library, group_key__in=group_keys_).only(
            "id", "group_key", "source_fingerprint", "album_id"
        )
    }
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

    with transaction.atomic():
        albums = _upsert_albums(library, specs)
        now = timezone.now()
        tracks = Track.objects.bulk_create(
            [
                Track(
                    library=library,
                    group_key=spec.group_key,
                    album=albums.get((spec.album_title, spec.album_album_artist)) if spec.album_title else None,
                    title=spec.title,
                    artists=spec.artists,
                    album_artist=spec.album_artist,
                    genres=spec.genres,
                    disc_number=spec.disc_number,
                    track_number=spec.track_number,
                    year=spec.year,
                    duration_ms=spec.duration_ms,
                    tags=spec.tags,
                    source_fingerprint=fingerprints[spec.group_key],
                    missing=False,
                    updated_at=now,
                )
                for spec in specs
            ],
            update_conflicts=True,
            unique_fields=["library", "group_key"],
            update_fields=_TRACK_DATA_FIELDS,
        )
        track_ids = {track.group_key: track.pk for track in tracks}
        if unplayable:
            Track.objects.filter(library=library, group_key__in=unplayable).update(missing=True, updated_at=now)
        links = [
            AudioFile(id=audio_file.id, track_id=track_ids[group_key])
            for group_key, files in files_by_group.items()
            if group_key in track_ids
            for audio_file in files
        ]
        AudioFile.objects.bulk_update(links, ["track"], batch_size=1000)
        Chapter.objects.filter(track_id__in=track_ids.values()).delete()
        Chapter.objects.bulk_create(
            [
                Chapter(track_id=track_ids[spec.group_key], index=index, **chapter)
                for spec in specs
                for index, chapter in enumerate(spec.chapters)
            ],
            batch_size=1000,
        )
        touched_albums = {album.pk for album in albums.values()} | {
            track.album_id for track in previous.values() if track.album_id
        }
        _refresh_albums(touched_albums)

    return [
        track_ids[spec.group_key]
        for spec in specs
        if spec.group_key not in previous or previous[spec.group_key].source_fingerprint != fingerprints[spec.group_key]
    ]


def _upsert_albums(library: Library, specs: Iterable[TrackSpec]) -> dict[tuple[str, str], Album]:
    wanted: dict[tuple[str, str], Album] = {}
    for spec in specs:
        if not spec.album_title:
            continue
        key = (spec.album_title, spec.album_album_artist)
        album = wanted.get(key)
        if album is None:
            wanted[key] = Album(
                library=library,
                title=spec.album_title,
                album_artist=spec.album_album_artist,
                artists=list(spec.artists),
                genres=list(spec.genres),
                year=spec.year,
            )
        else:
            album.artists += [a for a in spec.artists if a not in album.artists]
            album.genres += [g for g in spec.genres if g not in album.genres]
            album.year = album.year or spec.year
    if not wanted:
        return {}
    Album.objects.bulk_create(
        list(wanted.values()),
        update_conflicts=True,
        unique_fields=["library", "title", "album_artist"],
        update_fields=["artists", "genres", "year", "updated_at"],
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


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
