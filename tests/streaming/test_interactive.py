"""Interactive first (issue 18): the Procfile's two workers, started as `make run` starts them, and an
interactive transcode published while the bulk worker is busy with a long one."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.streaming import services
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import TMP_DIR_NAME
from tests.audio import make_audio
from tests.conftest import wait_for
from tests.factories import LibraryFactory
from tests.pipeline import scan_job
from tests.streaming.workers import procfile_worker_start, procfile_workers, worker_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_procfile_gives_interactive_transcodes_a_worker_of_their_own():
    queues = {name: q for name, (_, q) in procfile_workers().items()}
    assert queues["interactive"] == ["transcode.interactive"]
    takers = [name for name, q in queues.items() if "transcode.interactive" in q]
    assert takers == ["interactive"]  # the bulk worker never takes it
    assert [name for name, q in queues.items() if "transcode.bulk" in q] == ["worker"]


def statuses(track_id: int) -> set[str]:
    return set(Rendition.objects.filter(track_id=track_id).values_list("status", flat=True))


def test_an_interactive_transcode_runs_while_the_bulk_worker_is_busy(
    tmp_path: Path, process_env, django_capture_on_commit_callbacks, settings
):
    # One long run keeps the bulk worker busy (a chunked one would free it between chunks: test_chunked).
    settings.TRANSCODE_CHUNK_SECONDS = 0
    process_env = {**process_env, "TRANSCODE_CHUNK_SECONDS": "0"}
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
    # One bulk slot, so one long transcode keeps the bulk worker busy.
    workers = [
        procfile_worker_start("worker", process_env, CELERY_WORKER_CONCURRENCY="1"),
        procfile_worker_start("interactive", process_env),
    ]
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
            worker_stop(worker)
    rows = Rendition.objects.filter(track=song)
    assert sorted(r.profile for r in rows) == ["aac-128", "aac-256", "aac-64"]
