"""Walk library roots with `os.scandir`: audio files with their size and mtime, nothing read yet."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from apps.library.scanner.metadata import AUDIO_EXTENSIONS

MAX_PATH_CHARS = 2048


@dataclass(frozen=True, slots=True)
class FoundFile:
    root: str
    path: str  # relative to root, "/"-separated
    size_bytes: int
    mtime_ns: int

    @property
    def absolute_path(self) -> str:
        return f"{self.root.rstrip('/')}/{self.path}"


def _inside(real_path: str, real_roots: list[str]) -> bool:
    return any(real_path == root or real_path.startswith(root.rstrip("/") + "/") for root in real_roots)


def walk_roots(roots: list[str], *, on_problem: Callable[[str, str], None]) -> Iterator[FoundFile]:
    """Every audio file under `roots`, depth first.

    Hidden entries (".*") are skipped. A symlink is followed only when its target lies inside one of
    the roots (no escape to the rest of the disk) and a folder is entered once even if links loop
    back to it. A folder or file that cannot be read, or that disappears while we walk, is reported
    through `on_problem(path, message)` and the walk goes on.
    """
    real_roots = [os.path.realpath(root) for root in roots]
    for root in roots:
        seen_dirs: set[tuple[int, int]] = set()
        stack: list[tuple[str, str]] = [(root, "")]
        while stack:
            folder, relative = stack.pop()
            try:
                folder_stat = os.stat(folder)
                if (folder_stat.st_dev, folder_stat.st_ino) in seen_dirs:
                    continue
                seen_dirs.add((folder_stat.st_dev, folder_stat.st_ino))
                with os.scandir(folder) as iterator:
                    entries = sorted(iterator, key=lambda entry: entry.name)
            except OSError as exc:
                on_problem(relative or ".", f"cannot read folder: {exc.strerror or exc}")
                continue
            subfolders = []
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                entry_relative = f"{relative}{name}"
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    on_problem(entry_relative.encode("utf-8", "replace").decode(), "name is not valid UTF-8; skipped")
                    continue
                try:
                    if entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_roots):
                        continue
                    if entry.is_dir():
                        subfolders.append((entry.path, f"{entry_relative}/"))
                        continue
                    if os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS or not entry.is_file():
                        continue
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # deleted while we walked: it is simply not there
                except OSError as exc:
                    on_problem(entry_relative, f"cannot read: {exc.strerror or exc}")
                    continue
                if len(entry_relative) > MAX_PATH_CHARS:
                    on_problem(entry_relative[:200] + "…", f"path longer than {MAX_PATH_CHARS} characters; skipped")
                    continue
                yield FoundFile(root, entry_relative, stat.st_size, stat.st_mtime_ns)
            # Reversed so that the stack pops folders in name order.
            stack.extend(reversed(subfolders))
