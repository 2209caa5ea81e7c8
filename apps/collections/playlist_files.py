"""Extended M3U (M3U8) playlists, read and written without the database.

Reading is strict about what could be an attack or a broken file, and lenient about the rest: a NUL, bytes
that are not UTF-8, a `..` segment or a file over `M3U8_MAX_BYTES` refuse the whole file (M3U8Error, a 400
naming the line); a line that names nothing we can resolve (a URL, a file no library has) is reported back
as unmatched by the caller and the rest is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

M3U8_MAX_BYTES = 1024 * 1024  # 1 MiB: about 10 000 entries with long paths and #EXTINF titles
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_WINDOWS_DRIVE = re.compile(r"^[a-zA-Z]:/")


class M3U8Error(ValueError):
    def __init__(self, message: str, *, line: int | None = None):
        super().__init__(f"Line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class M3U8Line:
    line: int  # 1-based, in the file
    path: str  # as written, with `\` turned into `/`
    title: str  # from the #EXTINF before it, else ""

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.path))

    @property
    def is_absolute(self) -> bool:
        return self.path.startswith("/") or bool(_WINDOWS_DRIVE.match(self.path))


def m3u8_parse(content: bytes) -> list[M3U8Line]:
    """The media lines of an M3U/M3U8 file, in order. Raises M3U8Error for a file that must be refused."""
    if len(content) > M3U8_MAX_BYTES:
        raise M3U8Error(f"The file is larger than {M3U8_MAX_BYTES} bytes.")
    if b"\x00" in content:
        raise M3U8Error("The file contains a NUL byte.", line=content[: content.index(b"\x00")].count(b"\n") + 1)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise M3U8Error("The file is not UTF-8.", line=content[: exc.start].count(b"\n") + 1) from None
    entries: list[M3U8Line] = []
    title = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.upper().startswith("#EXTINF:"):
                title = line.partition(",")[2].strip()
            continue
        path = line.replace("\\", "/")
        if not _URL.match(path) and ".." in path.split("/"):
            raise M3U8Error("A path may not contain '..'.", line=number)
        entries.append(M3U8Line(line=number, path=path, title=title))
        title = ""
    return entries


@dataclass(frozen=True)
class M3U8Item:
    path: str
    duration_ms: int
    artists: list[str]
    title: str


def m3u8_write(items: Iterable[M3U8Item]) -> str:
    """An extended M3U8 (UTF-8): `#EXTM3U`, then `#EXTINF:<seconds>,<artists> - <title>` and the path."""
    lines = ["#EXTM3U"]
    for item in items:
        label = f"{', '.join(item.artists)} - {item.title}" if item.artists else item.title
        # A newline in a tag would start a new line of the playlist.
        label = " ".join(label.split())
        lines.append(f"#EXTINF:{round(item.duration_ms / 1000)},{label}")
        lines.append(item.path)
    return "\n".join(lines) + "\n"
