"""Walk library roots with `os.scandir`: audio files with their size and mtime, nothing read yet."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

from apps.library.artwork.images import IMAGE_EXTENSIONS
from apps.library.scanner.lyrics import SIDECAR_EXTENSIONS
from apps.library.scanner.metadata import AUDIO_EXTENSIONS

# AudioFile.group_key and Track.group_key hold root + "/" + path (a book: its folder) in 2048 characters.
MAX_PATH_CHARS = 2048


class FoundFile(NamedTuple):
    # A NamedTuple, not a dataclass: tens of thousands are made per scan and tuples are the cheapest.
    root: str
    path: str  # relative to root, "/"-separated
    size_bytes: int
    mtime_ns: int


def inside_roots(real_path: str, real_roots: list[str]) -> bool:
    """Whether a resolved path is one of the resolved roots or lies under one (the scan's rule for a symlink,
    and serving's for an original: apps.library.services.originals)."""
    return any(real_path == root or real_path.startswith(root.rstrip("/") + "/") for root in real_roots)


def walk_roots(
    roots: list[str],
    *,
    on_problem: Callable[[str, str], None],
    on_image: Callable[[FoundFile], None] | None = None,
    on_sidecar: Callable[[FoundFile], None] | None = None,
) -> Iterator[FoundFile]:
    """Every audio file under `roots`, depth first.

    Hidden entries (".*") are skipped. A symlink is followed only when its target lies inside one of
    the roots (no escape to the rest of the disk), and a folder is entered once even if links loop
    back to it. A folder or file that cannot be read, or that disappears while we walk, is reported
    through `on_problem(path, message)` and the walk goes on. Image files (candidate covers) met on the way
    are given to `on_image`, with their size and mtime, in the same pass; lyrics sidecars (.lrc, .txt) to
    `on_sidecar`.
    """
    real_roots = [os.path.realpath(root) for root in roots]
    for root in roots:
        room = MAX_PATH_CHARS - len(root.rstrip("/")) - 1  # what the path under this root may take
        # (device, inode) of every folder walked: a link to one of them (a loop, an alias) is not re-entered.
        # One stat per folder, not per file.
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
                    entries = list(iterator)
            except OSError as exc:
                on_problem(relative or ".", f"cannot read folder: {exc.strerror or exc}")
                continue
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    on_problem(
                        f"{relative}{name}".encode("utf-8", "replace").decode(), "name is not valid UTF-8; skipped"
                    )
                    continue
                try:
                    if entry.is_symlink() and not inside_roots(os.path.realpath(entry.path), real_roots):
                        continue
                    if entry.is_dir():
                        stack.append((entry.path, f"{relative}{name}/"))
                        continue
                    extension = name[name.rfind(".") :].lower()
                    if extension in IMAGE_EXTENSIONS and on_image is not None and entry.is_file():
                        image_stat = entry.stat()
                        on_image(FoundFile(root, f"{relative}{name}", image_stat.st_size, image_stat.st_mtime_ns))
                        continue
                    if extension in SIDECAR_EXTENSIONS and on_sidecar is not None and entry.is_file():
                        sidecar_stat = entry.stat()
                        on_sidecar(FoundFile(root, f"{relative}{name}", sidecar_stat.st_size, sidecar_stat.st_mtime_ns))
                        continue
                    if extension not in AUDIO_EXTENSIONS or not entry.is_file():
                        continue
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # deleted while we walked: it is simply not there
                except OSError as exc:
                    on_problem(f"{relative}{name}", f"cannot read: {exc.strerror or exc}")
                    continue
                path = f"{relative}{name}"
                if len(path) > room:
                    on_problem(
                        path[:200] + "…",
                        f"path longer than {MAX_PATH_CHARS} characters with its library folder; skipped",
                    )
                    continue
                yield FoundFile(root, path, stat.st_size, stat.st_mtime_ns)
