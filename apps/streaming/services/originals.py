"""Serving a track's original files, for any front-end (the REST API's direct play, the web player, the
OpenSubsonic API): which file, opened and checked (library.services.originals), with its media type.
How the bytes leave (Django's own Range answer or nginx's X-Accel-Redirect) is the front-end's business."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from rest_framework import status

from apps.library.models import AudioFile, Track
from apps.library.services.originals import OriginalRefused, audio_file_open
from apps.ops.errors import DomainError
from apps.streaming.selectors import track_source_files

MEDIA_TYPES: Final = {
    "mp3": "audio/mpeg",
    "aac": "audio/mp4",
    "alac": "audio/mp4",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "vorbis": "audio/ogg",
    "pcm": "audio/wav",
}


class OriginalUnavailable(DomainError):
    """No such file in the track, or it cannot be served now: 404 (with why, for people)."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


@dataclass(frozen=True)
class TrackOriginal:
    file: BinaryIO  # opened and checked: serve this descriptor (or close it), never the path again
    real_path: Path  # where it lies, no symlink left: what nginx may be told to send
    content_type: str


def media_type(audio_file: AudioFile) -> str:
    if audio_file.format == "mp4" and audio_file.codec in ("aac", "alac"):
        return "audio/mp4"
    return MEDIA_TYPES.get(audio_file.codec, "application/octet-stream")


def track_original_open(*, track: Track, index: int | None = None) -> TrackOriginal:
    """The track's file number `index` in play order, or with None its one file (a track made of several
    files has no single original). Raises OriginalUnavailable."""
    files = track_source_files(track=track)
    if index is None:
        if len(files) != 1:
            raise OriginalUnavailable(f"This track is made of {len(files)} files: use /files/<n>.")
        index = 0
    if not 0 <= index < len(files):
        raise OriginalUnavailable("No such file in this track.")
    audio_file = files[index]
    try:
        original = audio_file_open(audio_file=audio_file)
    except FileNotFoundError:
        raise OriginalUnavailable("The file is missing on disk; a rescan will update the library.") from None
    except OriginalRefused:
        raise OriginalUnavailable("The file changed on disk since the scan; a rescan will update it.") from None
    return TrackOriginal(file=original.file, real_path=original.real_path, content_type=media_type(audio_file))
