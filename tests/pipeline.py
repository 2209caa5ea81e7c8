"""Rows as production makes them: audio generated with the real ffmpeg, scanned by the real scanner,
transcoded by the real transcoder. Slower than tests/factories.py; for tests whose subject is the files."""

from __future__ import annotations

from pathlib import Path

from apps.library.models import Library, LibraryKind, ScanJob, Track
from apps.library.services import ScanResult, library_scan, scan_claim, scan_request, scan_run
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import rendition_transcode
from tests.audio import make_audio
from tests.factories import LibraryFactory


def scan(library: Library) -> ScanResult:
    library.refresh_from_db()
    return library_scan(library=library)


def scan_job(library: Library) -> ScanJob:
    """A scan as the worker runs it: a job row, claimed, run, recorded on the library."""
    job, _ = scan_request(library=library, dispatch=False)
    return scan_run(job=scan_claim(job_id=job.pk))


def music_track(media: Path, name: str = "song.mp3", seconds: float = 14.0, **tags: str) -> Track:
    """One tagged tone in a music library of `media`, scanned."""
    make_audio(media / name, seconds=seconds, tags={"title": name, **tags})
    library = LibraryFactory(root=media)
    scan(library)
    return Track.objects.get(library=library, title=name)


def book_track(media: Path, parts: int = 3, seconds: float = 5.0) -> Track:
    """A book of `parts` files (a tone each, of rising pitch) in an audiobook library of `media`, scanned."""
    for index in range(1, parts + 1):
        make_audio(media / "Author" / "Book" / f"{index:02d}.mp3", seconds=seconds, frequency=300 + 50 * index)
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)
    scan(library)
    return Track.objects.get(library=library)


def ready(track: Track) -> list[Rendition]:
    """Transcode the track's ladder; its renditions, all ready."""
    result = rendition_transcode(track_id=track.pk)
    assert result.outcome == "published", result
    rows = list(Rendition.objects.filter(track=track, rendition_key=result.rendition_key))
    assert rows and all(r.status == RenditionStatus.READY for r in rows)
    return rows
