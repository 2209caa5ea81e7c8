"""Lyrics: LRC and plain text parsed into synced lines and plain text (pure: no Django, no I/O but the
sidecar reads in `sidecar_lyrics`).

Sources, best first: a `<track>.lrc` sidecar, an ID3 SYLT frame (milliseconds), embedded text that is LRC
(USLT, MP4 ©lyr and Vorbis LYRICS often hold LRC), plain embedded text (USLT, ©lyr, LYRICS/UNSYNCEDLYRICS),
a `<track>.txt` sidecar. The first synced source gives the lines; the plain text is the first plain source,
else the synced lines' text.

LRC as found in the wild: `[mm:ss.xx]`, `[mm:ss]`, `[mm:ss:xx]`, `[mm:ss.xxx]`, several timestamps before one
line (a repeated chorus), `[offset:+250]` (positive: shown sooner), `[la:eng]`/`[lang:]`, enhanced LRC's
`<mm:ss.xx>` word timings (dropped: one line is the unit), metadata tags (`[ar:]`, `[ti:]`...) and garbage
(skipped and counted). Negative times are clamped to 0 and lines sorted by time (stable, so two lines at one
time keep their order).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# A lyrics text above this is cut at a line boundary and the cut recorded: a 5 MB tag is garbage or an
# attack, never a song's words (the longest real LRC files are a few tens of KB).
MAX_LYRICS_CHARS = 256 * 1024
MAX_SYNCED_LINES = 10_000
MAX_LINE_CHARS = 1000
# A sidecar is opened only below this size; above it, it is refused unread.
MAX_SIDECAR_BYTES = 1024 * 1024
SIDECAR_EXTENSIONS = (".lrc", ".txt")

_TIME_TAG = re.compile(r"\[(-?)(\d{1,4}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_META_TAG = re.compile(r"\[([A-Za-z#]+):([^\]]*)\]\s*$")
_WORD_TIME = re.compile(r"<\d{1,4}:\d{1,2}(?:[.:]\d{1,3})?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Lyrics:
    """What is stored per file (AudioFile.lyrics as JSON) and served per track."""

    synced: list[tuple[int, str]] = field(default_factory=list)  # (start_ms, text), sorted
    plain: str = ""
    language: str = ""  # ISO 639-2 as tagged (ID3 "eng", LRC [la:]), "" when unknown
    source: str = ""  # where the synced lines (else the plain text) came from: "sidecar.lrc", "SYLT", ...
    problems: list[str] = field(default_factory=list)  # why something was cut or refused

    @property
    def empty(self) -> bool:
        return not self.synced and not self.plain

    def as_json(self) -> dict[str, Any]:
        if self.empty:
            return {}
        return {
            "synced": [[start_ms, text] for start_ms, text in self.synced],
            "plain": self.plain,
            "language": self.language,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Lyrics:
        value = value or {}
        return cls(
            synced=[(int(start_ms), str(text)) for start_ms, text in value.get("synced", [])],
            plain=str(value.get("plain", "")),
            language=str(value.get("language", "")),
            source=str(value.get("source", "")),
        )


@dataclass
class ParsedLrc:
    lines: list[tuple[int, str]]
    language: str
    skipped: int  # lines that were neither timed lyrics, metadata nor blank
    truncated: bool


def _cap(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_LYRICS_CHARS:
        return text, False
    cut = text.rfind("\n", 0, MAX_LYRICS_CHARS)
    return text[: cut if cut > 0 else MAX_LYRICS_CHARS], True


def _clean_line(text: str) -> str:
    return _CONTROL.sub("", _WORD_TIME.sub("", text)).strip()[:MAX_LINE_CHARS]


def looks_like_lrc(text: str) -> bool:
    """At least one line starting with a time tag (plain lyrics never do)."""
    return any(_TIME_TAG.match(line.lstrip()) for line in text.splitlines()[:200] if line.strip())


def parse_lrc(text: str) -> ParsedLrc:
    text, truncated = _cap(text.lstrip("\ufeff"))
    offset_ms = 0
    language = ""
    timed: list[tuple[int, int, str]] = []  # (time, order, text): the order keeps a stable sort explicit
    skipped = 0
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        position = 0
        stamps: list[int] = []
        while match := _TIME_TAG.match(line, position):
            sign, minutes, seconds, fraction = match.groups()
            if int(seconds) >= 60:
                break
            milliseconds = int(fraction.ljust(3, "0")) if fraction else 0  # .5 = 500, .45 = 450, .123
            stamp = (int(minutes) * 60 + int(seconds)) * 1000 + milliseconds
            stamps.append(-stamp if sign else stamp)
            position = match.end()
            while position < len(line) and line[position] == " ":
                position += 1
        if stamps:
            words = _clean_line(line[position:])
            for stamp in stamps:
                timed.append((stamp, len(timed), words))
            continue
        meta = _META_TAG.match(line)
        if meta:
            key, value = meta[1].lower(), meta[2].strip()
            if key == "offset":
                try:
                    offset_ms = int(value.replace("+", "", 1)) if value else 0
                except ValueError:
                    skipped += 1
            elif key in ("la", "lang", "language"):
                language = value[:16]
            continue
        skipped += 1
    # LRC's offset: positive shows every line sooner.
    lines = sorted(((max(stamp - offset_ms, 0), order, words) for stamp, order, words in timed))
    if len(lines) > MAX_SYNCED_LINES:
        lines, truncated = lines[:MAX_SYNCED_LINES], True
    return ParsedLrc([(stamp, words) for stamp, _, words in lines], language, skipped, truncated)


def clean_plain(text: str) -> tuple[str, bool]:
    text, truncated = _cap(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text).strip(), truncated


def decode_text(data: bytes) -> str:
    """Bytes of a sidecar file as text: UTF-8 (with or without BOM), or UTF-16 with its BOM. Anything else
    raises UnicodeDecodeError: legacy code pages (cp1251, Shift-JIS, GBK...) cannot be told apart from the
    bytes alone, and a guess would store mojibake; the reason is recorded instead."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


@dataclass(frozen=True)
class Candidate:
    """One lyrics text found in a file or beside it."""

    source: str
    text: str = ""
    lines: tuple[tuple[int, str], ...] = ()  # already timed (SYLT)
    language: str = ""


def sidecar_paths(audio_path: str) -> list[str]:
    stem = os.path.splitext(audio_path)[0]
    return [stem + extension for extension in SIDECAR_EXTENSIONS]


def sidecar_key(found: Iterable[tuple[str, int, int]]) -> str:
    """What the walk and the reader both record of a file's sidecars, (extension, size, mtime_ns) each: the
    file is read again when it changes (a new, edited or deleted .lrc is a changed track)."""
    return "|".join(f"{extension}:{size}:{mtime_ns}" for extension, size, mtime_ns in sorted(found))


def sidecar_lyrics(audio_path: str) -> tuple[list[Candidate], str, list[str]]:
    """The sidecars of one audio file: their candidates, their key and the problems met reading them."""
    candidates: list[Candidate] = []
    found: list[tuple[str, int, int]] = []
    problems: list[str] = []
    for path in sidecar_paths(audio_path):
        extension = path[path.rfind(".") :]
        try:
            stat = os.stat(path)
            found.append((extension, stat.st_size, stat.st_mtime_ns))
            if stat.st_size > MAX_SIDECAR_BYTES:
                problems.append(f"{os.path.basename(path)}: over {MAX_SIDECAR_BYTES // 1024} KiB; not read")
                continue
            with open(path, "rb") as handle:
                data = handle.read(MAX_SIDECAR_BYTES + 1)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{os.path.basename(path)}: cannot read: {exc.strerror or exc}")
            continue
        try:
            text = decode_text(data)
        except UnicodeDecodeError as exc:
            problems.append(
                f"{os.path.basename(path)}: not UTF-8 or UTF-16 with a BOM (byte 0x{data[exc.start]:02x} at "
                f"{exc.start}); not read"
            )
            continue
        candidates.append(Candidate(source=f"sidecar{extension}", text=text))
    return candidates, sidecar_key(found), problems


def _rank(candidate: Candidate) -> int:
    order = ("sidecar.lrc", "SYLT")
    return order.index(candidate.source) if candidate.source in order else len(order)


def pick(candidates: Iterable[Candidate]) -> Lyrics:
    """The stored lyrics from every candidate: synced lines from the best timed source, plain text from the
    first untimed one (else the synced lines' words)."""
    result = Lyrics()
    ordered = sorted(candidates, key=_rank)  # stable: the reader's order breaks ties
    for candidate in ordered:
        if candidate.lines:
            lines = sorted((max(start, 0), _clean_line(text)) for start, text in candidate.lines)
            if len(lines) > MAX_SYNCED_LINES:
                lines = lines[:MAX_SYNCED_LINES]
                result.problems.append(f"{candidate.source}: over {MAX_SYNCED_LINES} lines; cut")
            if not result.synced and lines:
                result.synced, result.source = lines, candidate.source
                result.language = result.language or candidate.language
            continue
        if candidate.source == "sidecar.lrc" or looks_like_lrc(candidate.text):
            parsed = parse_lrc(candidate.text)
            if parsed.truncated:
                result.problems.append(f"{candidate.source}: over the lyrics size cap; cut")
            if parsed.lines and not result.synced:
                result.synced, result.source = parsed.lines, candidate.source
                result.language = result.language or parsed.language or candidate.language
            continue
        plain, truncated = clean_plain(candidate.text)
        if truncated:
            result.problems.append(f"{candidate.source}: over {MAX_LYRICS_CHARS // 1024} KiB; cut")
        if plain and not result.plain:
            result.plain = plain
            result.source = result.source or candidate.source
            result.language = result.language or candidate.language
    if not result.plain and result.synced:
        result.plain = "\n".join(text for _, text in result.synced if text)
    return result
