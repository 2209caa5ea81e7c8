"""Scan jobs: request one (at most one active per library, kept by a partial unique constraint),
claim and run it, expire the ones whose worker died, and find libraries due for a periodic rescan."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.types import User
from apps.library import metrics
from apps.library.models import ACTIVE_SCAN_STATUSES, Library, ScanJob, ScanStatus, ScanTrigger
from apps.library.services.artwork import artwork_variants_send
from apps.library.services.handoff import tracks_changed
from apps.library.services.libraries import LibraryFoldersRefused
from apps.library.services.scan import ProgressCallback, library_scan

logger = logging.getLogger(__name__)

SCAN_TASK = "apps.library.tasks.library_scan_task"
HEARTBEAT_EVERY_S = 2.0
# A running scan whose worker has not written a heartbeat for this long is considered dead.
STALE_RUNNING = timedelta(minutes=15)
# A queued scan whose message was lost (broker wiped) must not block its library forever.
STALE_QUEUED = timedelta(hours=6)


def scan_request(
    *,
    library: Library,
    trigger: str = ScanTrigger.MANUAL,
    requested_by: User | None = None,
    dispatch: bool = True,
) -> tuple[ScanJob, bool]:
    """Queue a scan of `library`; if one is already queued or running, return that one instead.

    Returns (job, created). The task is sent only once the job row is committed. When the broker cannot
    take it (Redis down), the job is failed at once with the reason (see _dispatch), so it neither blocks the
    library's next scan for hours nor claims to be queued: callers check `job.status`.
    """
    try:
        with transaction.atomic():
            job = ScanJob.objects.create(library=library, trigger=trigger, requested_by=requested_by)
    except IntegrityError:
        active = ScanJob.objects.filter(library=library, status__in=ACTIVE_SCAN_STATUSES).first()
        if active is not None:
            return active, False
        # The active job finished between our insert and this read: try once more.
        job = ScanJob.objects.create(library=library, trigger=trigger, requested_by=requested_by)
    if dispatch:
        transaction.on_commit(lambda: _dispatch(job))
    return job, True


NOT_QUEUED = "Not queued: the task queue (the Celery broker) could not be reached. Scan again once it is back."


def _dispatch(job: ScanJob) -> None:
    try:
        current_app.send_task(SCAN_TASK, args=[job.pk])
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, OSError: the broker is away
        logger.warning("scan #%s of library %s not queued: broker unreachable (%s)", job.pk, job.library_id, exc)
        ScanJob.objects.filter(pk=job.pk, status=ScanStatus.QUEUED).update(
            status=ScanStatus.FAILED, finished_at=timezone.now(), failure=NOT_QUEUED
        )
        metrics.scans.labels(status=ScanStatus.FAILED).inc()
        job.refresh_from_db()


def scan_claim(*, job_id: int) -> ScanJob | None:
    """Mark the job running if it is ours to run: queued, or running with a dead worker (a redelivered
    message after a crash). None when another worker holds it or it has finished."""
    now = timezone.now()
    claimed = ScanJob.objects.filter(
        Q(status=ScanStatus.QUEUED) | Q(status=ScanStatus.RUNNING, heartbeat_at__lt=now - STALE_RUNNING),
        pk=job_id,
    ).update(status=ScanStatus.RUNNING, started_at=now, heartbeat_at=now)
    if not claimed:
        return None
    return ScanJob.objects.select_related("library").get(pk=job_id)


def scan_run(*, job: ScanJob, progress: ProgressCallback | None = None) -> ScanJob:
    """Run a claimed job to the end and record the outcome on it (and on its library)."""
    last_beat = time.monotonic()

    def beat(phase: str, done: int, total: int) -> None:
        nonlocal last_beat
        if progress:
            progress(phase, done, total)
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
            last_beat = time.monotonic()
            ScanJob.objects.filter(pk=job.pk, status=ScanStatus.RUNNING).update(heartbeat_at=timezone.now())

    started = time.monotonic()
    try:
        result = library_scan(library=job.library, progress=beat)
    except LibraryFoldersRefused as exc:
        # Not a crash: recorded on the job (the admin shows why), no traceback, no retry.
        logger.warning("scan #%s of library %s refused: %s", job.pk, job.library_id, exc)
        _finish(job, status=ScanStatus.FAILED, failure=f"Refused: {exc}"[:2000])
        metrics.scans.labels(status=ScanStatus.FAILED).inc()
        return job
    except Exception as exc:
        # A scan that cannot finish (database gone, root unreadable as a whole) is recorded, not retried
        # here: the next request or the schedule starts a new one, which resumes where this stopped.
        logger.exception("scan #%s of library %s failed", job.pk, job.library_id)
        _finish(job, status=ScanStatus.FAILED, failure=f"{type(exc).__name__}: {exc}"[:2000])
        metrics.scans.labels(status=ScanStatus.FAILED).inc()
        raise
    _finish(job, status=ScanStatus.SUCCEEDED, **result.counters())
    metrics.scans.labels(status=ScanStatus.SUCCEEDED).inc()
    metrics.scan_seconds.observe(time.monotonic() - started)
    for outcome, count in (
        ("added", result.added),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
        ("restored", result.restored),
        ("missing", result.missing),
        ("error", result.errors),
    ):
        metrics.scan_files.labels(result=outcome).inc(count)
    tracks_changed(track_ids=result.changed_track_ids)
    artwork_variants_send(artwork_ids=result.artwork_ids)
    return job


def _finish(job: ScanJob, *, status: str, **fields: object) -> None:
    now = timezone.now()
    with transaction.atomic():
        ScanJob.objects.filter(pk=job.pk).update(status=status, finished_at=now, heartbeat_at=now, **fields)
        Library.objects.filter(pk=job.library_id).update(last_scan=job)
    job.refresh_from_db()


def scan_jobs_expire() -> int:
    """Fail scans whose worker died (no heartbeat) or whose message never arrived. Returns how many."""
    now = timezone.now()
    expired = ScanJob.objects.filter(
        Q(status=ScanStatus.RUNNING, heartbeat_at__lt=now - STALE_RUNNING)
        | Q(status=ScanStatus.QUEUED, created_at__lt=now - STALE_QUEUED)
    ).update(status=ScanStatus.FAILED, finished_at=now, failure="The worker stopped answering; scan abandoned.")
    if expired:
        metrics.scans.labels(status=ScanStatus.FAILED).inc(expired)
    return expired


def scans_request_due() -> list[ScanJob]:
    """Queue a scan for every library whose rescan interval has passed since its last scan started."""
    now = timezone.now()
    jobs = []
    for library in Library.objects.filter(scan_interval_minutes__isnull=False).select_related("last_scan"):
        assert library.scan_interval_minutes is not None  # filtered above (narrows the type)
        last = library.last_scan
        if last is None or last.created_at + timedelta(minutes=library.scan_interval_minutes) <= now:
            job, created = scan_request(library=library, trigger=ScanTrigger.SCHEDULE)
            if created:
                jobs.append(job)
    return jobs
