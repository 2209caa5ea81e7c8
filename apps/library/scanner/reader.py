"""Read many files' metadata, in worker processes when there are enough of them.

mutagen is pure Python, so reading is bound to one core per process; a scan of thousands of files
reads them in a small pool of forked processes (results come back in order) while this process
writes the previous batch to PostgreSQL. Nothing here touches Django or the database: the forked
workers never use the connections they inherit, and leave through os._exit, which closes none.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from apps.library.artwork.images import BadImage
from apps.library.artwork.storage import ArtworkStorage
from apps.library.scanner.lyrics import Candidate, pick, sidecar_lyrics
from apps.library.scanner.metadata import UnreadableFile, read_metadata

logger = logging.getLogger(__name__)

# Below this many files a pool costs more (fork, pickling) than it saves.
POOL_MIN_FILES = 200
POOL_CHUNK = 32

_UNREADABLE: dict[str, Any] = {
    "format": "",
    "codec": "",
    "bitrate_kbps": None,
    "sample_rate_hz": None,
    "channels": None,
    "duration_ms": 0,
    "tags": "{}",
    "chapters": "[]",
    "truncated": False,
    "lyrics": "{}",
    "lyrics_error": "",
}
_NO_PICTURE: dict[str, Any] = {
    "artwork_hash": None,
    "artwork_mime": "",
    "artwork_width": 0,
    "artwork_height": 0,
    "artwork_bytes": 0,
    "artwork_error": "",
}


@dataclass(frozen=True)
class PictureRules:
    """Where embedded pictures are stored and what is accepted (settings, passed in: no Django here)."""

    artwork_root: Path
    max_bytes: int
    max_pixels: int


def picture_columns(picture: bytes | None, rules: PictureRules | None) -> dict[str, Any]:
    """The embedded picture stored by content hash (once, whichever process meets it first), or why not."""
    if picture is None or rules is None:
        return dict(_NO_PICTURE)
    try:
        stored = ArtworkStorage(rules.artwork_root).store(
            picture, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels
        )
    except BadImage as exc:
        return {**_NO_PICTURE, "artwork_error": f"embedded picture: {exc}"[:500]}
    except OSError as exc:  # the artwork folder not writable: the file's tags still count
        return {**_NO_PICTURE, "artwork_error": f"embedded picture not stored: {exc.strerror or exc}"[:500]}
    return {
        "artwork_hash": stored.hash,
        "artwork_mime": stored.info.mime,
        "artwork_width": stored.info.width,
        "artwork_height": stored.info.height,
        "artwork_bytes": stored.size_bytes,
        "artwork_error": "",
    }


def lyrics_columns(path: str, embedded: list[Candidate]) -> dict[str, Any]:
    """The file's lyrics (its sidecars' and its tags') as JSON text, why any were cut or refused, and the key
    of its sidecars (a changed .lrc makes the file be read again)."""
    sidecars, key, problems = sidecar_lyrics(path)
    lyrics = pick([*sidecars, *embedded])
    return {
        "lyrics": json.dumps(lyrics.as_json(), ensure_ascii=False),
        "lyrics_error": "; ".join([*problems, *lyrics.problems])[:500],
        "lyrics_sidecar": key,
    }


def file_columns(job: tuple[str, int], pictures: PictureRules | None = None) -> dict[str, Any] | None:
    """The AudioFile columns read from one file (tags and chapters as JSON text, the embedded picture stored
    and described, its lyrics), or None if it vanished."""
    path, size_bytes = job
    try:
        metadata = read_metadata(path, size_bytes)
    except FileNotFoundError:
        return None
    except UnreadableFile as exc:
        return {**_UNREADABLE, **_NO_PICTURE, "lyrics_sidecar": "", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - mutagen raises all sorts on corrupt data; record it, go on
        logger.warning("unexpected error reading %s", path, exc_info=True)
        return {
            **_UNREADABLE,
            **_NO_PICTURE,
            "lyrics_sidecar": "",
            "error": f"unreadable ({type(exc).__name__}: {exc})"[:500],
        }
    return {
        **picture_columns(metadata.picture, pictures),
        **lyrics_columns(path, metadata.lyrics),
        "format": metadata.format,
        "codec": metadata.codec,
        "bitrate_kbps": metadata.bitrate_kbps,
        "sample_rate_hz": metadata.sample_rate_hz,
        "channels": metadata.channels,
        "duration_ms": metadata.duration_ms,
        "tags": json.dumps(metadata.tags, ensure_ascii=False),
        "chapters": json.dumps(metadata.chapters, ensure_ascii=False),
        "truncated": metadata.truncated,
        "error": "",
    }


def read_all(
    jobs: Sequence[tuple[str, int]], *, workers: int, pictures: PictureRules | None = None
) -> Iterator[dict[str, Any] | None]:
    """file_columns() of every (path, size) in order, computed ahead by `workers` processes."""
    read_one = partial(file_columns, pictures=pictures)
    if workers > 1 and len(jobs) >= POOL_MIN_FILES:
        if pictures is not None:
            # Pillow's JPEG and PNG readers imported once here, not in every forked reader of every scan
            # (12 ms of CPU each, measured in a worker process).
            Image.preinit()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
        try:
            results = pool.map(read_one, jobs, chunksize=POOL_CHUNK)
        except (AssertionError, OSError, ValueError) as exc:
            # A Celery prefork child is a daemonic process and may not have children: read here instead
            # (a worker started with --pool=solo or --pool=threads on the `scan` queue reads in parallel).
            pool.shutdown(wait=False, cancel_futures=True)
            logger.info("reading tags without worker processes (%s)", exc)
        else:
            with pool:
                yield from results
            return
    for job in jobs:
        yield read_one(job)
