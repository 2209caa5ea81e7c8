from __future__ import annotations

from pathlib import Path

import pytest

from apps.library.models import Library, LibraryAccess, LibraryKind
from apps.library.services import library_scan, scan_claim, scan_request, scan_run


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    return folder


def make_library(root: Path, kind: str = LibraryKind.MUSIC, name: str | None = None, **fields) -> Library:
    return Library.objects.create(name=name or f"{kind} {root.name}", kind=kind, root_paths=[str(root)], **fields)


def scan(library: Library):
    library.refresh_from_db()
    return library_scan(library=library)


def grant(user, library: Library) -> LibraryAccess:
    return LibraryAccess.objects.create(user=user, library=library)


def scan_job(library: Library):
    """A scan as the worker runs it: a job row, claimed, run, recorded on the library."""
    job, _ = scan_request(library=library, dispatch=False)
    return scan_run(job=scan_claim(job_id=job.pk))
