"""What a transcode run, whole or chunk, checks and cleans: the source files it reads, the error it records,
the work folders a killed run left."""

from __future__ import annotations

import shutil
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

from apps.library.models import AudioFile
from apps.library.services.originals import OriginalRefused, audio_file_open


def sources_checked(files: list[AudioFile]) -> list[Path] | None:
    """The real paths of the track's files, each checked as direct play checks it (audio_file_open: inside
    its library, the file the scan read), or None when one is not: a link swapped in must not be transcoded
    into a rendition anyone may download, and a changed file would not match the rendition key (derived
    from the recorded fingerprint)."""
    real_paths = []
    for f in files:
        try:
            original = audio_file_open(audio_file=f)
        except (OSError, OriginalRefused):
            return None
        original.file.close()
        real_paths.append(original.real_path)
    return real_paths


def error_text(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return "The transcode ran over its time limit."
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or 'renditions storage'})"
    return str(exc)


def remove_leftovers(tmp_root: Path, *, prefix: str) -> None:
    """Work folders of runs killed before their cleanup (the caller holds the lock of their work)."""
    if not tmp_root.is_dir():
        return
    for entry in tmp_root.iterdir():
        if entry.name.startswith(prefix):
            shutil.rmtree(entry, ignore_errors=True)
