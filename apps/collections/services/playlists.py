"""Playlists: create, edit, and add/remove/move entries, each in one transaction with the playlist row
locked (`SELECT … FOR UPDATE`), so two devices editing at once are serialised; with `expected_version`
(the client's `If-Match`) the second one gets PlaylistVersionConflict instead of an interleaved result.

Every change rewrites the positions of the playlist's entries (bounded by PLAYLIST_MAX_ENTRIES) in one
statement and stores the new count and duration, so reads never count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.types import User
from apps.collections.errors import NotTheOwner, PlaylistVersionConflict, TracksNotFound
from apps.collections.models import PLAYLIST_MAX_ENTRIES, Playlist, PlaylistEntry
from apps.collections.playlist_files import M3U8Error, m3u8_parse
from apps.library.models import AudioFile, Library, Track
from apps.ops.errors import DomainError


def playlist_create(
    *, owner: User, name: str, description: str = "", public: bool = False, track_ids: Sequence[int] = ()
) -> Playlist:
    """A new playlist, with `track_ids` (all visible to the owner, else TracksNotFound and nothing made)."""
    with transaction.atomic():
        playlist = Playlist.objects.create(owner=owner, name=name, description=description, public=public)
        if track_ids:
            _replace_entries(playlist, [], [(None, pk) for pk in _visible_track_ids(owner, track_ids)])
    return playlist


def playlist_update(
    *,
    user: User,
    playlist_id: int,
    expected_version: int | None = None,
    name: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> Playlist:
    with transaction.atomic():
        playlist = _locked(user, playlist_id, expected_version)
        for field, value in (("name", name), ("description", description), ("public", public)):
            if value is not None:
                setattr(playlist, field, value)
        playlist.save()
    return playlist


def playlist_delete(*, user: User, playlist_id: int, expected_version: int | None = None) -> None:
    with transaction.atomic():
        _locked(user, playlist_id, expected_version).delete()


def playlist_entries_add(
    *,
    user: User,
    playlist_id: int,
    track_ids: Sequence[int],
    position: int | None = None,
    expected_version: int | None = None,
) -> Playlist:
    """Insert `track_ids` (in that order, repeats kept) before `position` (0-based; None: at the end).
    A track the user may not see: TracksNotFound (404), nothing added."""
    with transaction.atomic():
        playlist = _locked(user, playlist_id, expected_version)
        entries = _entry_rows(playlist)
        if position is not None and position > len(entries):
            raise _bad("position", f"At most {len(entries)} (the end of the playlist).")
        new = _visible_track_ids(user, track_ids)
        at = len(entries) if position is None else position
        _replace_entries(playlist, entries, entries[:at] + [(None, pk) for pk in new] + entries[at:])
    return playlist


def playlist_entries_remove(
    *, user: User, playlist_id: int, positions: Sequence[int], expected_version: int | None = None
) -> Playlist:
    with transaction.atomic():
        playlist = _locked(user, playlist_id, expected_version)
        entries = _entry_rows(playlist)
        beyond = sorted({p for p in positions if p >= len(entries)})
        if beyond:
            raise _bad("positions", f"No entry at {', '.join(map(str, beyond[:20]))} (it has {len(entries)}).")
        gone = set(positions)
        _replace_entries(playlist, entries, [row for index, row in enumerate(entries) if index not in gone])
    return playlist


def playlist_entries_move(
    *,
    user: User,
    playlist_id: int,
    from_position: int,
    to_position: int,
    count: int = 1,
    expected_version: int | None = None,
) -> Playlist:
    """Move `count` entries starting at `from_position` so that the first of them ends up at `to_position`."""
    with transaction.atomic():
        playlist = _locked(user, playlist_id, expected_version)
        entries = _entry_rows(playlist)
        if from_position + count > len(entries):
            raise _bad("from_position", f"The playlist has {len(entries)} entries.")
        block = entries[from_position : from_position + count]
        rest = entries[:from_position] + entries[from_position + count :]
        if to_position > len(rest):
            raise _bad("to_position", f"At most {len(rest)}.")
        _replace_entries(playlist, entries, rest[:to_position] + block + rest[to_position:])
    return playlist


@dataclass(frozen=True)
class UnmatchedLine:
    line: int
    path: str


@dataclass(frozen=True)
class PlaylistImport:
    playlist: Playlist
    unmatched: list[UnmatchedLine]


def playlist_import_m3u8(
    *, owner: User, name: str, content: bytes, public: bool = False, description: str = ""
) -> PlaylistImport:
    """A new playlist from an M3U8 file: each path relative to a library root (or absolute, inside one) is
    resolved to the track of that file, among the libraries the owner may see. Lines that match nothing
    (URLs, files no library has) come back in `unmatched`. Refused with a DomainError naming the line: a
    file too large, with a NUL, not UTF-8, a `..`, an absolute path outside every library the owner may
    see, more than PLAYLIST_MAX_ENTRIES entries."""
    try:
        lines = m3u8_parse(content)
    except M3U8Error as exc:
        raise _bad("file", str(exc)) from None
    if len(lines) > PLAYLIST_MAX_ENTRIES:
        raise _bad("file", f"More than {PLAYLIST_MAX_ENTRIES} entries.")
    roots = sorted(
        {
            root.rstrip("/")
            for roots in Library.objects.visible_to(owner).values_list("root_paths", flat=True)
            for root in roots
        },
        key=len,
        reverse=True,
    )
    wanted: list[tuple[int, str, str | None] | None] = []  # per line: (line, relative path, root or None)
    for item in lines:
        if item.is_url:
            wanted.append(None)
        elif item.is_absolute:
            root = next((r for r in roots if item.path.startswith(r + "/")), None)
            if root is None:
                raise _bad("file", f"Line {item.line}: {item.path} is not inside any library you can see.")
            wanted.append((item.line, item.path[len(root) + 1 :], root))
        else:
            relative = item.path
            while relative.startswith("./"):
                relative = relative[2:]
            wanted.append((item.line, relative, None))
    tracks = _tracks_of_paths(owner, {want[1] for want in wanted if want})
    track_ids: list[int] = []
    unmatched: list[UnmatchedLine] = []
    for item, want in zip(lines, wanted, strict=True):
        found = None
        if want is not None:
            _line, relative, root = want
            candidates = tracks.get(relative, [])
            found = next((pk for file_root, pk in candidates if root is None or file_root == root), None)
        if found is None:
            unmatched.append(UnmatchedLine(line=item.line, path=item.path))
        else:
            track_ids.append(found)
    with transaction.atomic():
        playlist = Playlist.objects.create(owner=owner, name=name, description=description, public=public)
        _replace_entries(playlist, [], [(None, pk) for pk in track_ids])
    return PlaylistImport(playlist=playlist, unmatched=unmatched)


def _tracks_of_paths(user: User, paths: set[str]) -> dict[str, list[tuple[str, int]]]:
    """relative path → [(root, track id)] of the listed tracks the user may see, first library first."""
    files = (
        AudioFile.objects.filter(
            library__in=Library.objects.visible_to(user), path__in=paths, missing=False, track__missing=False
        )
        .order_by("library_id", "root")
        .values_list("path", "root", "track_id")
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for path, root, track_id in files:
        found.setdefault(path, []).append((root.rstrip("/"), track_id))
    return found


def _bad(field: str, message: str) -> DomainError:
    return DomainError(message, fields={field: [message]})


def _locked(user: User, playlist_id: int, expected_version: int | None) -> Playlist:
    """The playlist row, locked for the transaction; 404 if the user may not see it, 403 if they only
    may read it, 409 on a stale version."""
    playlist = (
        Playlist.objects.select_for_update().filter(Q(owner=user) | Q(public=True)).filter(pk=playlist_id).first()
    )
    if playlist is None:
        raise Http404("No such playlist.")
    if playlist.owner_id != user.pk:
        raise NotTheOwner()
    if expected_version is not None and expected_version != playlist.version:
        raise PlaylistVersionConflict(current=playlist.version)
    playlist.version += 1  # whatever the change, saved with it
    return playlist


# (entry id or None for a new one, track id), in playlist order.
EntryRow = tuple[int | None, int]


def _entry_rows(playlist: Playlist) -> list[EntryRow]:
    return list(PlaylistEntry.objects.filter(playlist=playlist).order_by("position").values_list("id", "track_id"))


def _visible_track_ids(user: User, track_ids: Sequence[int]) -> list[int]:
    wanted = set(track_ids)
    visible = set(Track.objects.visible_to(user).listed().filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := sorted(wanted - visible):
        raise TracksNotFound(missing)
    return list(track_ids)


def _replace_entries(playlist: Playlist, before: list[EntryRow], after: list[EntryRow]) -> None:
    """Make the playlist's entries `after` (rows of `before` kept by id, new ones inserted), renumber, and
    store the count and duration (and the version _locked stepped). Under the caller's lock."""
    if len(after) > PLAYLIST_MAX_ENTRIES:
        raise _bad("track_ids", f"A playlist holds at most {PLAYLIST_MAX_ENTRIES} entries.")
    kept = {entry_id for entry_id, _track in after if entry_id is not None}
    removed = [entry_id for entry_id, _track in before if entry_id is not None and entry_id not in kept]
    if removed:
        PlaylistEntry.objects.filter(pk__in=removed).delete()
    moved_ids: list[int] = []
    moved_positions: list[int] = []
    new_entries: list[PlaylistEntry] = []
    old_position = {entry_id: index for index, (entry_id, _track) in enumerate(before)}
    for position, (entry_id, track_id) in enumerate(after):
        if entry_id is None:
            new_entries.append(PlaylistEntry(playlist=playlist, track_id=track_id, position=position))
        elif old_position[entry_id] != position:
            moved_ids.append(entry_id)
            moved_positions.append(position)
    if moved_ids:
        # One statement; the unique (playlist, position) is checked at commit, once every row has moved.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {PlaylistEntry._meta.db_table} AS entry SET position = moved.position "
                "FROM unnest(%s::bigint[], %s::integer[]) AS moved(id, position) WHERE entry.id = moved.id",
                [moved_ids, moved_positions],
            )
    if new_entries:
        PlaylistEntry.objects.bulk_create(new_entries)
    totals = PlaylistEntry.objects.filter(playlist=playlist).aggregate(
        count=Count("id"), duration_ms=Coalesce(Sum("track__duration_ms"), 0)
    )
    playlist.track_count = totals["count"]
    playlist.duration_ms = totals["duration_ms"]
    playlist.save(update_fields=["track_count", "duration_ms", "version", "updated_at"])


_REPAIR_SQL = """
WITH numbered AS (
    SELECT entry.id, entry.playlist_id, row_number() OVER w - 1 AS position
    FROM collections_playlistentry AS entry
    WHERE entry.playlist_id = ANY(%(ids)s)
    WINDOW w AS (PARTITION BY entry.playlist_id ORDER BY entry.position, entry.id)
), renumbered AS (
    UPDATE collections_playlistentry AS entry SET position = numbered.position
    FROM numbered WHERE entry.id = numbered.id AND entry.position <> numbered.position
    RETURNING entry.playlist_id
)
UPDATE collections_playlist AS playlist
SET track_count = totals.track_count, duration_ms = totals.duration_ms, version = playlist.version + 1
FROM (
    SELECT playlist.id, count(entry.id) AS track_count, coalesce(sum(track.duration_ms), 0) AS duration_ms
    FROM collections_playlist AS playlist
    LEFT JOIN collections_playlistentry AS entry ON entry.playlist_id = playlist.id
    LEFT JOIN library_track AS track ON track.id = entry.track_id
    WHERE playlist.id = ANY(%(ids)s)
    GROUP BY playlist.id
) AS totals
WHERE playlist.id = totals.id
  AND ((playlist.track_count, playlist.duration_ms) IS DISTINCT FROM (totals.track_count, totals.duration_ms)
       OR playlist.id IN (SELECT playlist_id FROM renumbered))
"""


def playlists_repair(*, playlist_ids: Sequence[int]) -> int:
    """Positions 0…n-1 again and the stored count and duration recomputed, for playlists whose entries
    changed without the services: a track deleted with its library (the entries go by CASCADE), a track
    whose duration a transcode corrected. One statement; each playlist that changed gets a new version.
    Returns how many changed."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REPAIR_SQL, {"ids": list(playlist_ids)})
        return cursor.rowcount
