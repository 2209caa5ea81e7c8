"""An original opened to be served or transcoded: the file the scan read, inside its library, or nothing.

A library folder is written by whoever fills it, and the scan is in the past: between the scan and a request
`x.mp3` can become a symlink to the server's secret key, to /etc/passwd or to another library's file (issue 13,
finding 1). Every way an original's bytes leave the server (direct play, `/files/<n>`, token links, the
transcoder's input and through it downloads, any front-end) goes through :func:`audio_file_open`, so the rule
has one owner.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from apps.library.models import AudioFile, ScanTrigger
from apps.library.scanner.grouping import join_path
from apps.library.scanner.walk import inside_roots
from apps.library.services.jobs import scan_request

logger = logging.getLogger(__name__)

# No file has it, so the next scan sees (size, mtime_ns) differ and reads the file again, without a column
# (and a migration) for a flag only the scanner would read.
CHANGED_MTIME_NS: Final = -1


class OriginalRefused(Exception):
    """The file on disk is not the one the scan read, or lies outside its library: nothing is served."""


@dataclass(frozen=True)
class OpenedOriginal:
    file: BinaryIO  # the caller serves this descriptor (or closes it) and nothing else
    real_path: Path  # where it lies, no symlink left: what nginx is told to send (X-Accel-Redirect)


def audio_file_open(*, audio_file: AudioFile) -> OpenedOriginal:
    """Open the scanned file for reading. It must resolve to a regular file under one of its library's folders
    (links inside the library are followed, as the scan follows them) with the size and mtime the scan
    recorded.

    The checks are made on the opened descriptor (its real path read back from /proc, fstat), so nothing can
    be swapped in between check and serve. Raises FileNotFoundError when the file is gone (the next scan marks
    it missing), OriginalRefused otherwise; then the file is marked changed and a scan of its library queued.
    """
    path = join_path(audio_file.root, audio_file.path)
    real_roots = [os.path.realpath(root) for root in audio_file.library.root_paths]
    # Also checked before opening: a FIFO or a device outside the library is never even opened.
    if not inside_roots(os.path.realpath(path), real_roots):
        _refuse(audio_file, "resolves outside its library's folders")
    # O_NONBLOCK: a FIFO swapped in after that check must not hang the request in open().
    file = open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK))
    try:
        opened = os.fstat(file.fileno())
        real_path = _real_path_of(file, path)
        if not stat.S_ISREG(opened.st_mode) or not inside_roots(real_path, real_roots):
            _refuse(audio_file, "resolves outside its library's folders")
        if (opened.st_size, opened.st_mtime_ns) != (audio_file.size_bytes, audio_file.mtime_ns):
            _refuse(audio_file, "differs from what the scan read")
        os.set_blocking(file.fileno(), True)
    except BaseException:
        file.close()
        raise
    return OpenedOriginal(file=file, real_path=Path(real_path))


def _real_path_of(file: BinaryIO, path: str) -> str:
    # Linux names what the descriptor holds; elsewhere (a developer's Mac) the path is resolved again, which
    # leaves a swap between open() and here possible.
    try:
        return os.readlink(f"/proc/self/fd/{file.fileno()}")
    except OSError:
        return os.path.realpath(path)


def _refuse(audio_file: AudioFile, why: str) -> None:
    # Conditional on what we read: a scan that stored the file again since is not undone, and a file already
    # marked is not marked (nor a scan queued) again on every request.
    marked = audio_file.mtime_ns != CHANGED_MTIME_NS and AudioFile.objects.filter(
        pk=audio_file.pk, size_bytes=audio_file.size_bytes, mtime_ns=audio_file.mtime_ns
    ).update(mtime_ns=CHANGED_MTIME_NS)
    if marked:
        logger.warning("original %s (audio file %s) %s: not served; rescan queued", audio_file.path, audio_file.pk, why)
        scan_request(library=audio_file.library, trigger=ScanTrigger.SOURCE_CHANGED)
    raise OriginalRefused(f"{audio_file.path} {why}")
