from __future__ import annotations

from celery import shared_task

from apps.library.services import scan_claim, scan_jobs_expire, scan_run, scans_request_due
from apps.library.services.artwork import artwork_variants_build
from apps.library.services.artwork_collect import artworks_collect

# A scan of a large library may run for an hour; the claim in scan_claim makes a redelivery harmless.
SCAN_SOFT_LIMIT_S = 3 * 3600


@shared_task(
    name="apps.library.tasks.library_scan_task",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SCAN_SOFT_LIMIT_S,
    time_limit=SCAN_SOFT_LIMIT_S + 300,
)
def library_scan_task(job_id: int) -> dict[str, object] | None:
    job = scan_claim(job_id=job_id)
    if job is None:
        return None  # another worker has it, or it is done
    job = scan_run(job=job)
    return {"job": job.pk, "status": job.status, "tracks_changed": job.tracks_changed}


@shared_task(name="apps.library.tasks.library_scans_due_task")
def library_scans_due_task() -> int:
    """Every minute (beat): queue the periodic rescans that are due, and fail scans whose worker died."""
    scan_jobs_expire()
    return len(scans_request_due())


@shared_task(
    name="apps.library.tasks.artwork_variants_task",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=360,
)
def artwork_variants_task(artwork_ids: list[int]) -> dict[str, int]:
    """The sizes of a few covers (the `artwork` queue, sent after a scan or an upload)."""
    statuses: dict[str, int] = {}
    for artwork_id in artwork_ids:
        status = artwork_variants_build(artwork_id=artwork_id) or "gone"
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


@shared_task(name="apps.library.tasks.artwork_collect_task")
def artwork_collect_task() -> dict[str, int]:
    """Every 6 hours (beat): covers nothing has referenced for ARTWORK_COLLECT_GRACE_S go, with their files."""
    result = artworks_collect()
    return {"marked": result.marked, "deleted": result.deleted, "files_deleted": result.files_deleted}
