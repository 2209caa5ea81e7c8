"""Transcodes in a real Celery worker: after a scan, and when the worker is killed mid-transcode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from apps.streaming import services
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import TMP_DIR_NAME
from tests.audio import make_audio
from tests.conftest import child_database_url, hand_off, wait_for
from tests.factories import LibraryFactory
from tests.pipeline import scan_job
from tests.streaming.hls_checks import check_media_playlist

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_worker(process_env: dict[str, str], *, concurrency: int = 1, own_group: bool = False) -> subprocess.Popen:
    """A worker on this test's transcode queues; `own_group`: in a process group of its own (to be killed
    whole, as a service manager or an OOM kill of the group would)."""
    env = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
    }
    queues = f"{services.INTERACTIVE_QUEUE},{services.BULK_QUEUE}"
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revenge", "worker", "-Q", queues, "--pool=prefork"]
        + [f"--concurrency={concurrency}", "-l", "WARNING"],
        env=env,
        process_group=0 if own_group else None,
    )


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def all_ready(track_ids: list[int]) -> bool:
    rows = Rendition.objects.filter(track_id__in=track_ids)
    return rows.count() == 3 * len(track_ids) and not rows.exclude(status=RenditionStatus.READY).exists()


def test_scan_pre_transcodes_in_the_worker(tmp_path: Path, process_env, settings, django_capture_on_commit_callbacks):
    settings.TRANSCODE_AFTER_SCAN = True
    media = tmp_path / "library"
    for n in range(3):
        make_audio(media / f"{n}.mp3", seconds=8, frequency=300 + 100 * n, tags={"title": f"song {n}"})
    library = LibraryFactory(root=media)
    scan_job(library)  # transactional test: the on_commit send happens for real
    track_ids = list(library.tracks.values_list("pk", flat=True))
    # The scan's hand-off message, run here: it queues the transcodes on this test's own bulk queue.
    assert hand_off() == [sorted(track_ids)]
    worker = start_worker(process_env)
    try:
        wait_for(lambda: all_ready(track_ids), timeout_s=120, what="renditions ready", process=worker)
    finally:
        stop(worker)
    for row in Rendition.objects.filter(track_id__in=track_ids).select_related("track"):
        check_media_playlist(settings.RENDITIONS_ROOT / row.folder_name, fmp4=True, source_ms=row.track.duration_ms)
        assert row.attempts == 1


def _pool_child(worker: subprocess.Popen) -> psutil.Process | None:
    children = psutil.Process(worker.pid).children()
    return children[0] if children else None


def test_worker_killed_mid_transcode_is_redelivered_and_never_half_published(
    tmp_path: Path, process_env, settings, django_capture_on_commit_callbacks
):
    settings.TRANSCODE_CHUNK_SECONDS = 0  # one bulk run, published by one rename (chunks: test_chunked)
    process_env = {**process_env, "TRANSCODE_CHUNK_SECONDS": "0"}
    media = tmp_path / "library"
    make_audio(media / "long.flac", seconds=900, tags={"title": "long"})
    library = LibraryFactory(root=media)
    scan_job(library)
    track = library.tracks.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.renditions_request(track_ids=[track.pk])
    tmp_root = settings.RENDITIONS_ROOT / TMP_DIR_NAME
    final = settings.RENDITIONS_ROOT / str(track.pk)
    worker = start_worker(process_env)
    try:

        def transcoding() -> bool:
            return tmp_root.is_dir() and any(tmp_root.glob(f"{track.pk}-*/*/aac-64/seg00001.m4s"))

        wait_for(transcoding, timeout_s=60, what="a transcode under way", process=worker)
        child = _pool_child(worker)
        ffmpeg = [p for p in child.children(recursive=True) if "ffmpeg" in p.name()]
        assert ffmpeg, "ffmpeg runs as a child of the pool process"
        first_tmp = next(tmp_root.glob(f"{track.pk}-*"))
        os.kill(child.pid, signal.SIGKILL)
        psutil.wait_procs(ffmpeg, timeout=10)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ffmpeg), "ffmpeg died with it"
        assert not final.exists()  # nothing published
        assert not Rendition.objects.filter(track=track, status=RenditionStatus.READY).exists()
        # The message is redelivered to the worker's new pool process, which starts over.
        wait_for(lambda: all_ready([track.pk]), timeout_s=180, what="renditions ready after the kill", process=worker)
    finally:
        stop(worker)
    assert not first_tmp.exists()
    assert list(tmp_root.iterdir()) == []
    rows = list(Rendition.objects.filter(track=track))
    assert {r.attempts for r in rows} == {2}
    for row in rows:
        check_media_playlist(settings.RENDITIONS_ROOT / row.folder_name, fmp4=True, source_ms=900_000)


def test_worker_process_group_killed_mid_transcode_is_reclaimed_and_finishes(
    tmp_path: Path, process_env, settings, django_capture_on_commit_callbacks
):
    settings.TRANSCODE_CHUNK_SECONDS = 0  # one bulk run, published by one rename (chunks: test_chunked)
    process_env = {**process_env, "TRANSCODE_CHUNK_SECONDS": "0"}
    media = tmp_path / "library"
    make_audio(media / "long.flac", seconds=900, tags={"title": "long"})
    library = LibraryFactory(root=media)
    scan_job(library)
    track = library.tracks.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.renditions_request(track_ids=[track.pk])
    tmp_root = settings.RENDITIONS_ROOT / TMP_DIR_NAME
    final = settings.RENDITIONS_ROOT / str(track.pk)
    worker = start_worker(process_env, own_group=True)
    replacement = None
    try:

        def transcoding() -> bool:
            return tmp_root.is_dir() and any(tmp_root.glob(f"{track.pk}-*/*/aac-64/seg00001.m4s"))

        wait_for(transcoding, timeout_s=60, what="a transcode under way", process=worker)
        group = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        ffmpeg = [p for p in group if "ffmpeg" in p.name()]
        assert ffmpeg, "ffmpeg runs in the worker's process group"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker, its pool and ffmpeg: nobody left to requeue
        worker.wait(timeout=10)
        psutil.wait_procs(group, timeout=10)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in group)
        assert not final.exists()  # nothing published
        assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"running"}
        # The message stays unacknowledged in the broker until its visibility timeout (an hour): a new worker
        # gets nothing until the reclaim (beat, every 30 s; run here) sees the dead claim and queues it again.
        replacement = start_worker(process_env)
        wait_for(lambda: services.renditions_reclaim() == 1, timeout_s=30, what="the dead claim reclaimed")
        wait_for(lambda: all_ready([track.pk]), timeout_s=180, what="renditions ready", process=replacement)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        if replacement is not None:
            stop(replacement)
    assert services.renditions_reclaim() == 0
    assert list(tmp_root.iterdir()) == []
    rows = list(Rendition.objects.filter(track=track))
    assert {(r.status, r.attempts) for r in rows} == {("ready", 2)}
    for row in rows:
        check_media_playlist(settings.RENDITIONS_ROOT / row.folder_name, fmp4=True, source_ms=900_000)
