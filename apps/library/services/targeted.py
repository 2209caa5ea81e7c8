"""A targeted scan: one file of a library brought in line with the disk, without walking the library.

For files Revenge itself puts into (or takes out of) a library, such as downloaded podcast episodes: the
same reading, upsert and track building as a full scan (`scan.py`), for one path.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.library.models import Library, Track
from apps.library.scanner.grouping import group_keys
from apps.library.scanner.walk import FoundFile
from apps.library.services.handoff import tracks_changed
from apps.library.services.scan import ScanResult, _read_and_store, _rebuild_groups


class NotInLibrary(ValueError):
    pass


def library_file_scan(*, library: Library, path: Path) -> Track | None:
    """Read `path` (absolute, inside one of the library's folders) if it is there, or mark it missing if
    it is gone, and rebuild its track. Returns the track (None when the file is not playable or gone). A
    new or changed track is handed to the streaming pipeline, as after a scan."""
    root, relative = _root_of(library, path)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        stat = None
    found = FoundFile(root, relative, stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0)
    key = group_keys(library.kind, [found])[(root, relative)]
    if stat is not None:
        _read_and_store(library, [found], {(root, relative): key}, ScanResult(), lambda *_: None)
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE library_audiofile SET missing = true, updated_at = %s "
                "WHERE library_id = %s AND root = %s AND path = %s",
                [timezone.now(), library.pk, root, relative],
            )
    changed = _rebuild_groups(library, [key], frozenset(settings.LIBRARY_UNSPLIT_NAMES))
    tracks_changed(track_ids=changed)
    return Track.objects.filter(library=library, group_key=key, missing=False).first()


def _root_of(library: Library, path: Path) -> tuple[str, str]:
    for root in library.root_paths:
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        if ".." not in relative.parts and relative.parts:
            return root, relative.as_posix()
    raise NotInLibrary(f"{path} is not inside a folder of {library.name}")
