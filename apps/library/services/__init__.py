from apps.library.services.durations import track_duration_measured
from apps.library.services.jobs import (
    scan_claim,
    scan_jobs_expire,
    scan_request,
    scan_run,
    scans_request_due,
)
from apps.library.services.libraries import (
    LibraryFoldersRefused,
    library_folders_check,
    library_root_paths_clean,
)
from apps.library.services.scan import ScanResult, library_scan, tracks_sync

__all__ = [
    "LibraryFoldersRefused",
    "ScanResult",
    "library_folders_check",
    "library_root_paths_clean",
    "library_scan",
    "scan_claim",
    "scan_jobs_expire",
    "scan_request",
    "scan_run",
    "scans_request_due",
    "track_duration_measured",
    "tracks_sync",
]
