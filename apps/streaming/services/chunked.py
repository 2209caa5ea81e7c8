"""Running one chunk of a chunked rendition (apps.streaming.chunks): a span of a long track, encoded into every
profile by one ffmpeg run whose segments go straight into the rendition's folder, each renamed into place when
whole. Chunks of one track run at once on several workers (a lock per chunk); the live playlists are rewritten
from what is on disk under a file lock, so two workers never interleave them. The chunk that completes the
set writes the VOD playlists, measures them and marks the rows ready.

A failed chunk is recorded on the rows with its position and withdraws nothing: every segment on disk is
whole and right (a later chunk, or the redo, writes the same bytes: the encode is deterministic and
bitexact); only a source changed mid-run discards the rendition.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import m3u8
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.library.models import ScanTrigger, Track
from apps.library.services import scan_request, track_duration_measured
from apps.library.services.loudness import track_loudness_current
from apps.streaming import metrics
from apps.streaming import services as package
from apps.streaming.chunks import (
    ChunkPlan,
    chunk_durations_check,
    chunk_span_ms,
    fragment_frames,
    live_playlist,
    ms_text,
    segment_name,
)
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.profiles import Ladder
from apps.streaming.selectors import track_chunk_plan, track_rendition_key, track_source_files
from apps.streaming.services.analysis import track_loudness_measure_send
from apps.streaming.services.renditions import Outcome, chunk_lock, chunk_send, rows_ensure
from apps.streaming.services.sources import error_text, remove_leftovers, sources_checked
from apps.streaming.storage import (
    CHUNK_PLAYLIST_NAME,
    CHUNKS_DIR_NAME,
    INIT_NAME,
    LEAD_NAME,
    LIVE_PLAYLIST_NAME,
    PLAYLIST_NAME,
    RenditionStorage,
)
from apps.streaming.transcoder import (
    TranscodeFailed,
    concat_list_write,
    ffmpeg_command,
    ffmpeg_run,
    playlist_finish,
    rendition_measure,
    sources_lossless,
)

logger = logging.getLogger(__name__)

_LOCK_FILE = ".live.lock"


def rendition_chunk_transcode(*, track_id: int, order: list[int], position: int, width: int, queue: str) -> Outcome:
    """Make chunk `order[position]` of the track's chunked rendition (if no other worker is on it and it is not
    done), then send the chunk `width` further on in `order`, which keeps `width` chunks of the track in
    flight. Returns what became of this chunk."""
    background = queue != package.INTERACTIVE_QUEUE
    outcome = chunk_run(track_id=track_id, chunk=order[position], lead=order[0], background=background)
    if outcome in (Outcome.PUBLISHED, Outcome.ALREADY_READY) and position + width < len(order):
        chunk_send(track_id=track_id, order=order, position=position + width, width=width, queue=queue)
    return outcome


def chunk_run(*, track_id: int, chunk: int, lead: int, background: bool = False) -> Outcome:
    """Make one chunk (see rendition_chunk_transcode); `lead`: the chunk the run started with; `background`:
    bulk work (its ffmpeg niced: transcoder.ffmpeg_run)."""
    track = Track.objects.filter(pk=track_id, missing=False).prefetch_related("files").first()
    files = track_source_files(track=track) if track is not None else []
    if track is None or not files:
        Rendition.objects.filter(track_id=track_id).exclude(status=RenditionStatus.READY).delete()
        return Outcome.GONE
    ladder, key = track_rendition_key(track=track, files=files)
    plan = track_chunk_plan(ladder=ladder, files=files)
    if plan is None or chunk >= plan.chunk_count:
        return Outcome.GONE  # the track changed since this was sent: its new key was requested by the scan
    storage = RenditionStorage.from_settings()
    final = storage.folder(track.pk, key)
    done_marker = final / CHUNKS_DIR_NAME / f"{chunk:05d}.json"
    with chunk_lock(track.pk, chunk) as acquired:
        if not acquired:
            return Outcome.BUSY
        rows_ensure(track=track, ladder=ladder, key=key)
        rows = Rendition.objects.filter(track=track, rendition_key=key)
        if done_marker.is_file() or not rows.exclude(status=RenditionStatus.READY).exists():
            return Outcome.ALREADY_READY
        rows.exclude(status=RenditionStatus.READY).update(
            status=RenditionStatus.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            updated_at=timezone.now(),
        )
        for profile in ladder.profiles:
            (final / profile.name).mkdir(parents=True, exist_ok=True)
        (final / CHUNKS_DIR_NAME).mkdir(exist_ok=True)
        _lead_record(final / LEAD_NAME, lead)
        remove_leftovers(storage.tmp_root, prefix=f"{track.pk}-{key}-c{chunk}-")
        work = storage.tmp_root / f"{track.pk}-{key}-c{chunk}-{uuid.uuid4().hex[:8]}"
        start_ms, end_ms = chunk_span_ms(plan, chunk)
        started = time.monotonic()
        try:
            sources = sources_checked(files)
            if sources is None:
                raise _SourceChanged
            for profile in ladder.profiles:
                (work / profile.name).mkdir(parents=True)
            command = ffmpeg_command(
                sources=sources,
                concat_list=concat_list_write(sources, work),
                folder=final,
                ladder=ladder,
                source_rate_hz=files[0].sample_rate_hz,
                lossy_source=not sources_lossless([f.codec for f in files]),
                growing=True,
                chunk=(plan, chunk),
                playlist_folder=work,
            )
            refresh = _LiveRefresh(final=final, work=work, ladder=ladder, plan=plan)
            duration_ms = (end_ms or track.duration_ms) - start_ms
            ffmpeg_s = ffmpeg_run(
                command, duration_ms=max(duration_ms, 1), progress=lambda _: refresh(), background=background
            )
            durations = {}
            for profile in ladder.profiles:
                durations[profile.name] = _chunk_durations(work / profile.name / CHUNK_PLAYLIST_NAME)
                problem = chunk_durations_check(plan, chunk, durations[profile.name])
                if problem:
                    raise TranscodeFailed(problem)
            refresh(force=True)  # the init segment is in place before any playlist lists a segment
            if sources_checked(files) != sources:
                raise _SourceChanged
            _write_atomic(done_marker, json.dumps({"durations": durations, "ffmpeg_s": round(ffmpeg_s, 3)}))
            _live_write(final=final, ladder=ladder, plan=plan)
        except _SourceChanged:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)  # the run is discarded: nothing of the old source stays
            rows.update(status=RenditionStatus.PENDING, updated_at=timezone.now())
            scan_request(library=track.library, trigger=ScanTrigger.SOURCE_CHANGED)
            metrics.transcode_jobs.labels(status=Outcome.SOURCE_CHANGED).inc()
            return Outcome.SOURCE_CHANGED
        except (TranscodeFailed, SoftTimeLimitExceeded, OSError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            span = f"{ms_text(start_ms)}-{ms_text(end_ms) if end_ms is not None else 'end'}"
            error = f"chunk {chunk} ({span}): {error_text(exc)}"
            rows.exclude(status=RenditionStatus.READY).update(
                status=RenditionStatus.FAILED,
                error=error,
                attempts=F("attempts") + 1,
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            metrics.transcode_jobs.labels(status=Outcome.FAILED).inc()
            logger.warning("transcode of track %s failed: %s", track.pk, error.splitlines()[0])
            return Outcome.FAILED
        shutil.rmtree(work, ignore_errors=True)
        metrics.transcode_seconds.observe(time.monotonic() - started)
        _finish_if_complete(track=track, final=final, ladder=ladder, plan=plan, key=key)
    return Outcome.PUBLISHED


class _SourceChanged(Exception):
    pass


class _LiveRefresh:
    """Called on each of ffmpeg's progress lines (every 0.05 s): when a profile has a new segment, its init
    segment is put in place (first) and the live playlists are rewritten."""

    def __init__(self, *, final: Path, work: Path, ladder: Ladder, plan: ChunkPlan) -> None:
        self.final, self.work, self.ladder, self.plan = final, work, ladder, plan
        self.seen: dict[str, int] = {}

    def __call__(self, force: bool = False) -> None:
        counts = {p.name: _segment_count(self.final / p.name) for p in self.ladder.profiles}
        if counts == self.seen and not force:
            return
        for profile in self.ladder.profiles:
            init = self.final / profile.name / INIT_NAME
            made = self.work / profile.name / INIT_NAME
            if not init.exists() and _whole_init(made):
                tmp = init.with_name(f"{INIT_NAME}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copyfile(made, tmp)
                os.replace(tmp, init)
        if all((self.final / p.name / INIT_NAME).exists() for p in self.ladder.profiles):
            _live_write(final=self.final, ladder=self.ladder, plan=self.plan)
            self.seen = counts


def _whole_init(path: Path) -> bool:
    """ffmpeg writes the init segment in place, not through a temp name: it is taken once its top-level boxes
    (ftyp, moov) fill the file exactly."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    offset, kinds = 0, []
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if size < 8:
            return False
        kinds.append(data[offset + 4 : offset + 8])
        offset += size
    return offset == len(data) and b"moov" in kinds


def _segment_count(folder: Path) -> int:
    try:
        return sum(1 for name in os.listdir(folder) if name.startswith("seg") and not name.endswith(".tmp"))
    except FileNotFoundError:
        return 0


@contextmanager
def _folder_lock(final: Path) -> Iterator[None]:
    """Serializes the rewrites of a rendition's live playlists between its chunks' workers (a playlist is
    computed from the disk inside the lock, so the last one written is never older than one before it)."""
    with open(final / _LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _present(folder: Path, extension: str) -> set[int]:
    present = set()
    suffix = f".{extension}"
    for name in os.listdir(folder):
        if name.startswith("seg") and name.endswith(suffix):
            present.add(int(name[3 : -len(suffix)]))
    return present


def _whole_segments(folder: Path, plan: ChunkPlan, present: set[int], extension: str) -> set[int]:
    """The last chunk's segments on disk that hold a whole segment's frames: a listener resuming in the last
    chunk gets its first segment listed as soon as it is written, not one segment later (measured at 25:00
    of a 30-minute FLAC, the last of six chunks: 290-790 ms of the cold start under load)."""
    whole = set()
    for index in present:
        if index >= plan.first_segment(plan.chunk_count - 1) and index + 1 not in present:
            with open(folder / segment_name(index, extension), "rb") as segment:
                if fragment_frames(segment.read(4096)) == plan.frames_per_segment:
                    whole.add(index)
    return whole


def _last_durations(final: Path, plan: ChunkPlan, profile: str) -> list[float] | None:
    marker = final / CHUNKS_DIR_NAME / f"{plan.chunk_count - 1:05d}.json"
    try:
        return json.loads(marker.read_text())["durations"][profile]
    except FileNotFoundError:
        return None


def _live_write(*, final: Path, ladder: Ladder, plan: ChunkPlan) -> None:
    try:
        lead = int((final / LEAD_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return
    with _folder_lock(final):
        for profile in ladder.profiles:
            folder = final / profile.name
            present = _present(folder, ladder.segment_extension)
            last_durations = _last_durations(final, plan, profile.name)
            text = live_playlist(
                plan,
                lead=lead,
                present=present,
                last_durations=last_durations,
                extension=ladder.segment_extension,
                init_name=INIT_NAME,
                whole=_whole_segments(folder, plan, present, ladder.segment_extension) if not last_durations else None,
            )
            if text is not None:
                _write_atomic(folder / LIVE_PLAYLIST_NAME, text)


def _finish_if_complete(*, track: Track, final: Path, ladder: Ladder, plan: ChunkPlan, key: str) -> None:
    """When every chunk is done: each profile's VOD playlist from its complete live one, measured, the rows
    ready in one transaction (once: the folder lock serializes two chunks finishing together)."""
    markers = final / CHUNKS_DIR_NAME
    if not all((markers / f"{c:05d}.json").is_file() for c in range(plan.chunk_count)):
        return
    with _folder_lock(final):
        rows = Rendition.objects.filter(track=track, rendition_key=key)
        if not rows.exclude(status=RenditionStatus.READY).exists():
            return
        measured = []
        for profile in ladder.profiles:
            folder = final / profile.name
            live = (folder / LIVE_PLAYLIST_NAME).read_text()
            if "#EXT-X-ENDLIST" not in live or "#EXT-X-GAP" in live:
                return  # a segment is missing on disk: the chunk that lost it is redone by the next request
            _write_atomic(
                folder / PLAYLIST_NAME, live.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD")
            )
            playlist_finish(folder / PLAYLIST_NAME)
            measured.append(rendition_measure(folder, profile.name))
        transcode_ms = sum(json.loads(m.read_text()).get("ffmpeg_s", 0) for m in markers.glob("*.json")) * 1000
        now = timezone.now()
        with transaction.atomic():
            for m in measured:
                rows.filter(profile=m.profile).update(
                    status=RenditionStatus.READY,
                    size_bytes=m.size_bytes,
                    peak_bitrate_bps=m.peak_bitrate_bps,
                    average_bitrate_bps=m.average_bitrate_bps,
                    segment_count=m.segment_count,
                    duration_ms=m.duration_ms,
                    transcode_ms=round(transcode_ms),
                    finished_at=now,
                    error="",
                    updated_at=now,
                )
            track_duration_measured(track=track, measured_ms=max(m.duration_ms for m in measured))
            if not track_loudness_current(track=track):
                # No chunk's run saw the whole track: its loudness is measured by a decode of its own (bulk).
                transaction.on_commit(
                    lambda: track_loudness_measure_send(track_id=track.pk, duration_ms=track.duration_ms)
                )
    metrics.transcode_jobs.labels(status=Outcome.PUBLISHED).inc()


def _chunk_durations(path: Path) -> list[float]:
    playlist = m3u8.load(str(path))
    if not playlist.is_endlist:
        raise TranscodeFailed(f"{path.name}: the chunk's run ended without EXT-X-ENDLIST")
    return [float(s.duration) for s in playlist.segments]


def _lead_record(path: Path, chunk: int) -> None:
    """The first chunk of the run is its lead, for good (a later request does not move the live playlists'
    contiguous part under the players already reading them)."""
    try:
        with open(path, "x") as handle:
            handle.write(str(chunk))
    except FileExistsError:
        pass


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
