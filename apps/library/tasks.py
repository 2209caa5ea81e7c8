from __future__ import annotations

from celery import shared_task

from apps.library.services import scan_claim, scan_jobs_expire, scan_run, scans_request_due

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
