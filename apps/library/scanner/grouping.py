"""From files to tracks: which files make one track, and what that track is (pure functions, no I/O).

- music: one track per file; album by (album, album artist).
- podcast: one episode track per file; the album is the show (album tag, else the folder name).
- audiobook: one track per book folder, its files in order (disc, track, then natural sort of names);
  a `CD1`/`Disc 2`/`Part 3` folder belongs to the book above it; files at a root, and `.m4b` files
  (each a whole book), are books of their own. Chapters in the book's continuous timeline.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from apps.library.models import LibraryKind

_DISC_FOLDER = re.compile(r"(cd|disc|disk|part)[\s._-]*(?P<number>\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_ID3_FORMATS = {"mp3", "wav"}
# The columns' sizes (Track.genres, Album.genres): a longer tag is cut, never an error for the scan.
GENRE_MAX_CHARS = 200
# The album artist of a compilation tagged with none (what MusicBrainz and most players call it).
VARIOUS_ARTISTS = "Various Artists"
_TRUE = frozenset({"1", "true", "yes"})
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")


class FileLike(Protocol):
    # Read-only members, so that NamedTuples (FoundFile, FileRow) satisfy it.
    @property
    def root(self) -> str: ...
    @property
    def path(self) -> str: ...


class TaggedFile(FileLike, Protocol):
    """A file whose play order can be told: a FileRow while scanning, an AudioFile while streaming."""

    @property
    def tags(self) -> dict[str, list[str]]: ...


class FileRow(NamedTuple):
    """What grouping needs of a stored file (one row of library_audiofile)."""

    id: int
    root: str
    path: str
    format: str
    duration_ms: int
    tags: dict[str, list[str]]
    embedded_chapters: list[dict[str, Any]]
    error: str
    missing: bool
    size_bytes: int
    mtime_ns: int


def group_keys(kind: str, files: Iterable[FileLike]) -> dict[tuple[str, str], str]:
    """(root, path) → group key: the absolute path of the file, or of the book folder."""
    files = list(files)
    if kind != LibraryKind.AUDIOBOOK:
        return {(f.root, f.path): join_path(f.root, f.path) for f in files}
    by_folder: dict[tuple[str, str], list[FileLike]] = defaultdict(list)
    for f in files:
        by_folder[(f.root, os.path.dirname(f.path))].append(f)
    keys = {}
    for (root, folder), members in by_folder.items():
        each_own_book = folder == "" or all(m.path.lower().endswith(".m4b") for m in members) and len(members) > 1
        parent, name = os.path.split(folder)
        book_folder = parent if parent and _DISC_FOLDER.fullmatch(name) else folder
        for member in members:
            keys[(member.root, member.path)] = (
                join_path(root, member.path) if each_own_book else join_path(root, book_folder)
            )
    return keys


def fingerprint(files: Iterable[tuple[str, int, int]]) -> str:
    """Changes when any file of the track is added, removed, resized or touched: (path, size, mtime_ns)."""
    digest = hashlib.sha256()
    for path, size_bytes, mtime_ns in sorted(files):
        digest.update(f"{path}\0{size_bytes}\0{mtime_ns}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass
class TrackSpec:
    group_key: str
    title: str
    artists: list[str]
    album_artist: str
    genres: list[str]
    disc_number: int | None
    track_number: int | None
    year: int | None
    duration_ms: int
    tags: dict[str, list[str]]
    album_title: str | None
    album_album_artist: str
    file_ids: list[int] = field(default_factory=list)
    chapters: list[dict[str, Any]] = field(default_factory=list)
    album_artists: list[str] = field(default_factory=list)
    disc_subtitle: str = ""
    published_at: datetime | None = None
    description: str = ""
    compilation: bool = False
    release_type: str = ""
    author: str = ""  # a podcast show's


def build_track(kind: str, group_key: str, files: Sequence[FileRow], *, unsplit: frozenset[str]) -> TrackSpec | None:
    """The track made of `files` (all files of one group), or None when none of them can be played."""
    playable = sorted((f for f in files if not f.missing and not f.error), key=play_order)
    if not playable:
        return None
    first = playable[0]
    tags = first.tags
    split_slash = first.format in _ID3_FORMATS
    tagged_album_artists = _names(tags.get("albumartist"), split_slash, unsplit)
    artists = _names(tags.get("artist"), split_slash, unsplit) or tagged_album_artists
    release_type = "; ".join(_names(tags.get("releasetype"), split_slash, frozenset()))[:200]
    compilation = _first(tags, "compilation").lower() in _TRUE or "compilation" in release_type.lower()
    # Several tagged album artists are all the album's; without any, a compilation is "Various Artists"
    # (one album, not one per track artist) and another album its first track artist's.
    album_artists = tagged_album_artists or ([VARIOUS_ARTISTS] if compilation else artists[:1])
    album_artist = ", ".join(album_artists)
    genres = _names(tags.get("genre"), split_slash, unsplit, max_chars=GENRE_MAX_CHARS)
    stem = os.path.splitext(os.path.basename(first.path))[0]
    published_at, description, author = None, "", ""

    if kind == LibraryKind.AUDIOBOOK:
        title = _first(tags, "album") or (stem if _is_file_key(group_key, first) else os.path.basename(group_key))
        series = _first(tags, "series") or _first(tags, "grouping")
        album_title, album_key_artist = (series, album_artist) if series else (None, "")
    elif kind == LibraryKind.PODCAST:
        title = _first(tags, "title") or stem
        show = _first(tags, "album") or os.path.basename(os.path.dirname(first.path))
        album_title, album_key_artist = (show or None), ""
        published_at = published(tags, first.mtime_ns)
        description = _first(tags, "description") or _first(tags, "comment")
        author = ", ".join(tagged_album_artists or artists)
    else:
        title = _first(tags, "title") or stem
        album_title, album_key_artist = _first(tags, "album"), album_artist

    return TrackSpec(
        group_key=group_key,
        title=title[:500],
        artists=artists,
        album_artist=album_artist[:500],
        genres=genres,
        disc_number=_number(tags, "discnumber", 32767),
        track_number=None if kind == LibraryKind.AUDIOBOOK else _number(tags, "tracknumber", 2**31 - 1),
        year=_year(tags),
        duration_ms=sum(f.duration_ms for f in playable),
        tags=tags,
        album_title=album_title[:500] if album_title else None,
        album_album_artist=album_key_artist[:500],
        file_ids=[f.id for f in playable],
        chapters=_timeline_chapters(kind, playable),
        album_artists=[name[:500] for name in album_artists],
        disc_subtitle=_first(tags, "discsubtitle")[:500],
        published_at=published_at,
        description=description,
        compilation=compilation,
        release_type=release_type,
        author=author[:500],
    )


def published(tags: dict[str, list[str]], mtime_ns: int) -> datetime:
    """An episode's publish time: its release date tag (ID3 TDRL), else its date (TDRC, MP4 ©day, Vorbis
    DATE), else the file's mtime. A date without a time is midnight UTC; a year or month alone is its
    first day, unless the file's mtime falls inside it (then the mtime, which is more precise)."""
    mtime = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    for key in ("releasedate", "date"):
        text = _first(tags, key)
        if not text:
            continue
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            partial = _PARTIAL_DATE.match(text)
            if not partial:
                continue
            year, month = int(partial[1]), int(partial[2] or 0)
            try:
                moment = datetime(year, month or 1, 1, tzinfo=UTC)
            except ValueError:
                continue
            if mtime.year == year and (not month or mtime.month == month):
                return mtime
            return moment
        try:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        except OverflowError:  # its offset takes it past year 9999 or before year 1: no datetime can hold it
            continue
    return mtime


def _timeline_chapters(kind: str, playable: Sequence[FileRow]) -> list[dict[str, Any]]:
    chapters: list[dict[str, Any]] = []
    offset = 0
    for f in playable:
        if f.embedded_chapters:
            for chapter in f.embedded_chapters:
                chapters.append(
                    {
                        "title": chapter["title"] or f"Chapter {len(chapters) + 1}",
                        "start_ms": offset + chapter["start_ms"],
                        "end_ms": offset + chapter["end_ms"],
                    }
                )
        elif kind == LibraryKind.AUDIOBOOK:
            title = _first(f.tags, "title") or os.path.splitext(os.path.basename(f.path))[0]
            chapters.append({"title": title[:500], "start_ms": offset, "end_ms": offset + f.duration_ms})
        offset += f.duration_ms
    return chapters


def _is_file_key(group_key: str, f: FileRow) -> bool:
    return group_key == join_path(f.root, f.path)


def join_path(root: str, path: str) -> str:
    """The absolute path of `path` under `root` (the root itself for an empty path)."""
    return f"{root.rstrip('/')}/{path}" if path else root.rstrip("/")


def natural_key(text: str) -> list[Any]:
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    return [int(part) if part.isdecimal() else part.lower() for part in re.split(r"(\d+)", text)]


def play_order(f: TaggedFile) -> tuple[Any, ...]:
    disc = _number(f.tags, "discnumber", 32767)
    if disc is None:  # Book/CD2/01.mp3 without a disc tag: CD2's track 1 comes after CD1's last
        disc = _folder_disc(f.path)
    track = _number(f.tags, "tracknumber", 2**31 - 1)
    return (disc if disc is not None else 0, track if track is not None else 0, natural_key(f.path))


def _folder_disc(path: str) -> int | None:
    folder = os.path.basename(os.path.dirname(path))
    match = _DISC_FOLDER.fullmatch(folder)
    if match is None:
        return None
    number = int(match["number"])
    return number if 0 < number <= 32767 else None


def _first(tags: dict[str, list[str]], key: str) -> str:
    values = tags.get(key) or []
    return values[0].strip() if values else ""


def _number(tags: dict[str, list[str]], key: str, maximum: int) -> int | None:
    """ "3", "03/12" → 3; nonsense → None."""
    match = _NUMBER.match(_first(tags, key))
    if not match:
        return None
    number = int(match.group())
    return number if 0 < number <= maximum else None


def _year(tags: dict[str, list[str]]) -> int | None:
    match = re.match(r"(\d{4})", _first(tags, "date") or _first(tags, "originaldate"))
    year = int(match.group(1)) if match else None
    return year if year and 1000 <= year <= 9999 else None


def _names(values: list[str] | None, split_slash: bool, unsplit: frozenset[str], max_chars: int = 500) -> list[str]:
    """Artist or genre values as a list: repeated fields kept, ";" split everywhere, "/" split in ID3
    (its old multi-value separator), except names listed in LIBRARY_UNSPLIT_NAMES (AC/DC)."""
    names: list[str] = []
    for value in values or []:
        for part in re.split(r"\s*;\s*", value):
            part = part.strip()
            pieces = re.split(r"\s*/\s*", part) if split_slash and part not in unsplit else [part]
            for piece in pieces:
                piece = piece.strip()[:max_chars].strip()
                if piece and piece not in names:
                    names.append(piece)
    return names
