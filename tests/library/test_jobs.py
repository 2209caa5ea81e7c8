from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.core.management import CommandError, call_command
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from apps.library.models import Library, ScanJob, ScanStatus, ScanTrigger, Track
from apps.library.services import scan_claim, scan_jobs_expire, scan_request, scan_run, scans_request_due
from apps.library.services.jobs import SCAN_TASK
from tests.audio import make_audio
from tests.conftest import child_database_url, free_port
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import scan_job

pytestmark = pytest.mark.django_db


def test_one_active_scan_per_library_is_kept_by_the_database(tmp_path):
    (tmp_path / "music").mkdir()
    library = LibraryFactory(root=tmp_path / "music")
    first, created = scan_request(library=library, dispatch=False)
    second, created_again = scan_request(library=library, dispatch=False)

    assert created and not created_again and second.pk == first.pk
    assert scan_claim(job_id=first.pk) is not None
    assert scan_claim(job_id=first.pk) is None  # a twin delivery of the same message does nothing
    run = scan_run(job=ScanJob.objects.get(pk=first.pk))
    assert run.status == ScanStatus.SUCCEEDED
    third, created = scan_request(library=library, dispatch=False)
    assert created and third.pk != first.pk


def test_a_running_scan_whose_worker_died_is_reclaimed_or_expired(tmp_path):
    library = LibraryFactory(root=tmp_path)
    job, _ = scan_request(library=library, dispatch=False)
    scan_claim(job_id=job.pk)
    ScanJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert scan_claim(job_id=job.pk) is not None  # the redelivered message takes it over

    ScanJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert scan_jobs_expire() == 1
    job.refresh_from_db()
    assert job.status == ScanStatus.FAILED and "stopped answering" in job.failure


def test_periodic_rescans_are_queued_when_due(tmp_path):
    due = LibraryFactory(root=tmp_path / "a", name="due", scan_interval_minutes=60)
    not_due = LibraryFactory(root=tmp_path / "b", name="fresh", scan_interval_minutes=60)
    LibraryFactory(root=tmp_path / "c", name="manual only")
    old, _ = scan_request(library=due, dispatch=False)
    ScanJob.objects.filter(pk=old.pk).update(
        status=ScanStatus.SUCCEEDED, created_at=timezone.now() - timedelta(hours=2)
    )
    Library.objects.filter(pk=due.pk).update(last_scan=old)
    recent, _ = scan_request(library=not_due, dispatch=False)
    ScanJob.objects.filter(pk=recent.pk).update(status=ScanStatus.SUCCEEDED)
    Library.objects.filter(pk=not_due.pk).update(last_scan=recent)

    jobs = scans_request_due()

    assert [(job.library.name, job.trigger) for job in jobs] == [("due", ScanTrigger.SCHEDULE)]


def test_scan_command_shows_progress_and_a_summary(tmp_path, capsys):
    # Not tmp_path itself: it holds the test's renditions, media and static folders, refused in a library.
    make_audio(tmp_path / "music" / "a.mp3", seconds=1, tags={"title": "A"})
    (tmp_path / "music" / "bad.mp3").write_bytes(b"")
    library = LibraryFactory(root=tmp_path / "music", name="Home")

    call_command("scan", "Home")

    out, err = capsys.readouterr()
    assert "Home: 2 files seen, 2 added, 0 updated, 0 unchanged, 0 missing, 0 restored, 1 errors" in out
    assert "1 tracks new or changed" in out
    assert "! bad.mp3: empty file (0 bytes)" in out
    assert "Home: reading tags" in err and "100%" in err  # the tqdm bar
    assert ScanJob.objects.get(library=library).trigger == ScanTrigger.COMMAND
    with pytest.raises(CommandError, match="No library 'Nope'. Libraries: Home."):
        call_command("scan", "Nope")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_scan_task(tmp_path, process_env, settings):
    media = tmp_path / "music"
    make_audio(media / "x.mp3", seconds=1, tags={"title": "From the worker"})
    # Enough files for the scan to read tags in worker processes forked from the Celery worker's.
    template = make_audio(media / "many" / "000.ogg", seconds=1)
    for n in range(1, 250):
        shutil.copyfile(template, media / "many" / f"{n:03}.ogg")
    library = LibraryFactory(root=media)
    job, _ = scan_request(library=library, dispatch=False)
    queue = f"test-scan-{uuid.uuid4().hex[:8]}"
    env = {**process_env, "DATABASE_URL": child_database_url()}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-Q", queue, "--pool=solo", "-l", "WARNING"],
        env=env,
    )
    try:
        app = Celery("client", broker=settings.CELERY_BROKER_URL)
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.send_task(SCAN_TASK, args=[job.pk], queue=queue)
        deadline = time.monotonic() + 60
        while ScanJob.objects.get(pk=job.pk).status != ScanStatus.SUCCEEDED:
            assert time.monotonic() < deadline, ScanJob.objects.get(pk=job.pk).__dict__
            assert worker.poll() is None
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert Track.objects.count() == 251
    assert Track.objects.filter(title="From the worker").exists()
    assert ScanJob.objects.get(pk=job.pk).errors == 0
    assert Library.objects.get(pk=library.pk).last_scan_id == job.pk


def test_scans_are_counted_in_the_metrics_by_outcome_and_file_result(tmp_path):
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def snapshot() -> dict[str, float]:
        files = {r: value("revenge_scan_files_total", result=r) for r in ("added", "unchanged", "missing", "error")}
        return {
            **files,
            "succeeded": value("revenge_scans_total", status="succeeded"),
            "failed": value("revenge_scans_total", status="failed"),
            "timed": value("revenge_scan_seconds_count"),
        }

    def delta(before: dict[str, float]) -> dict[str, float]:
        return {key: count - before[key] for key, count in snapshot().items()}

    media = tmp_path / "library"
    make_audio(media / "one.mp3", seconds=0.5)
    make_audio(media / "two.mp3", seconds=0.5)
    (media / "broken.flac").write_bytes(b"fLaC but nothing after it")
    library = LibraryFactory(root=media)

    before = snapshot()
    scan_job(library)
    assert delta(before) == {
        "added": 3,
        "unchanged": 0,
        "missing": 0,
        "error": 1,
        "succeeded": 1,
        "failed": 0,
        "timed": 1,
    }

    (media / "two.mp3").unlink()
    before = snapshot()
    scan_job(library)
    # The broken file is unchanged too, and still reported: it has not been mended.
    assert delta(before) == {
        "added": 0,
        "unchanged": 2,
        "missing": 1,
        "error": 1,
        "succeeded": 1,
        "failed": 0,
        "timed": 1,
    }

    job, _ = scan_request(library=library, dispatch=False)
    scan_claim(job_id=job.pk)
    ScanJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    before = snapshot()
    assert scan_jobs_expire() == 1
    assert delta(before)["failed"] == 1


@pytest.mark.django_db(transaction=True)  # no test transaction: the send runs at once, as in a request
def test_a_scan_asked_for_while_the_broker_is_down_fails_at_once_with_why(tmp_path, monkeypatch, admin_client):
    """Redis (the broker) down: the API answers 503 and the admin says why, the job is failed with the
    reason rather than left queued without a message (which blocked the library's scans for 6 hours), so the
    next request is a new job."""
    from apps.library.services import jobs

    library = LibraryFactory(root=tmp_path)
    api = APIClient()
    api.force_authenticate(UserFactory(is_staff=True))
    dead = Celery("dead-broker", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    monkeypatch.setattr(jobs, "current_app", dead)

    refused = api.post(f"/api/v1/libraries/{library.pk}/scan")
    page = admin_client.post(
        "/admin/library/library/", {"action": "scan_now", "_selected_action": [library.pk]}, follow=True
    )

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "queue_unavailable"
    assert "could not be reached" in refused.json()["error"]["message"]
    assert [str(m) for m in page.context["messages"]][0].endswith(jobs.NOT_QUEUED)
    assert list(ScanJob.objects.values_list("status", "failure")) == [(ScanStatus.FAILED, jobs.NOT_QUEUED)] * 2

    # Nothing left queued: the next request (the broker back) gets a new job of its own.
    job, created = scan_request(library=library, dispatch=False)
    assert created and job.status == ScanStatus.QUEUED
