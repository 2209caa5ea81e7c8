"""Keys generated once into the data folder when the environment gives none (no Django imports here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def key_file_read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The key kept in `path`, else a new one from `make()` written there (mode 0600).

    O_EXCL: two processes starting together agree on the first key written.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = make()
        try:
            fd = path.open("x")
        except FileExistsError:
            return path.read_text().strip()
        with fd:
            path.chmod(0o600)
            fd.write(key)
        return key
