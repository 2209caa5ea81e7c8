"""Interactive first (issue 18): the Procfile's two workers, started as `make run` starts them, and an
interactive transcode published while the bulk worker is busy with a long one."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from apps.streaming import services
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import TMP_DIR_NAME
from revenge.launcher import procfile_entries
from tests.audio import make_audio
from tests.conftest import BASE_DIR, child_database_url, wait_for
from tests.factories import LibraryFactory
from tests.pipeline import scan_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def procfile_workers() -> dict[str, tuple[str, list[str]]]:
    """name -> (command line, its -Q queues) for each Celery worker of the Procfile."""
    workers = {}
    for name, command in procfile_entries(BASE_DIR / "Procfile"):
        words = shlex.split(command)
        if words[:4] == ["celery", "-A", "revenge", "worker"]:
            workers[name] = (command, words[words.index("-Q") + 1].split(","))
    return workers


def test_the_procfile_gives_interactive_transcodes_a_worker_of_their_own():
    queues = {name: q for name, (_, q) in procfile_workers().items()}
    assert queues["interactive"] == ["transcode.interactive"]
    takers = [name for name, q in queues.items() if "transcode.interactive" in q]
    assert takers == ["interactive"]  # the bulk worker never takes it
    assert [name for name, q in queues.items() if "transcode.bulk" in q] == ["worker"]


def start(name: str, process_env: dict[str, str]) -> subprocess.Popen:
    """The Procfile's line for `name`, run as the launcher runs it (a shell expands the ${...}), its transcode
    queue swapped for this test's own (and nothing else consumed: other tests' messages stay put)."""
    command, queues = procfile_workers()[name]
    ours = {"transcode.interactive": services.INTERACTIVE_QUEUE, "transcode.bulk": services.BULK_QUEUE}
    command = command.replace(",".join(queues), ",".join(ours[q] for q in queues if q in ours))
    command = command.replace("celery ", f"{shlex.quote(sys.executable)} -m celery ", 1)
    command = command.replace("--loglevel=INFO", "--loglevel=WARNING")
    env = {
        **process_env,
        "DATABASE_URL": child_database_url(),
        "RENDITIONS_ROOT": str(settings.RENDITIONS_ROOT),
        "CELERY_WORKER_CONCURRENCY": "1",  # one bulk slot, so one long transcode keeps the bulk worker busy
    }
    return subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], env=env)


def stop(worker: subprocess.Popen) -> None:
    # Cold shutdown: the bulk worker's long transcode is not waited for (its ffmpeg dies with its process).
    worker.send_signal(signal.SIGQUIT)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def statuses(track_id: int) -> set[str]:
    return set(Rendition.objects.filter(track_id=track_id).values_list("status", flat=True))


def test_an_interactive_transcode_runs_while_the_bulk_worker_is_busy(
    tmp_path: Path, process_env, django_capture_on_commit_callbacks
):
    media = tmp_path / "library"
    make_audio(media / "long.flac", seconds=900, tags={"title": "long"})
    make_audio(media / "b1.flac", seconds=30, frequency=500, tags={"title": "backlog"})
    make_audio(media / "song.mp3", seconds=10, frequency=660, tags={"title": "song"})
    library = LibraryFactory(root=media)
    scan_job(library)
    long, backlog, song = (library.tracks.get(title=t) for t in ("long", "backlog", "song"))
    for track in (long, backlog):  # bulk: a backlog of two, the long one first
        with django_capture_on_commit_callbacks(execute=True):
            services.renditions_request(track_ids=[track.pk])
    tmp_root = settings.RENDITIONS_ROOT / TMP_DIR_NAME
    workers = [start("worker", process_env), start("interactive", process_env)]
    try:
        wait_for(
            lambda: tmp_root.is_dir() and any(tmp_root.glob(f"{long.pk}-*/*/aac-64/seg00001.m4s")),
            timeout_s=60,
            what="the bulk worker transcoding the long track",
            process=workers[0],
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.renditions_request(track_ids=[song.pk], interactive=True)
        wait_for(lambda: statuses(song.pk) == {RenditionStatus.READY}, timeout_s=60, what="song ready")
        # Published while the bulk worker was still on its first track, the backlog still waiting.
        assert statuses(long.pk) == {RenditionStatus.RUNNING}
        assert statuses(backlog.pk) == {RenditionStatus.PENDING}
    finally:
        for worker in workers:
            stop(worker)
    rows = Rendition.objects.filter(track=song)
    assert sorted(r.profile for r in rows) == ["aac-128", "aac-256", "aac-64"]
