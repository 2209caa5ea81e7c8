"""Reads for streaming, scoped to what the user may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from apps.accounts.types import RequestUser
from apps.library.models import AudioFile, Track
from apps.library.scanner.grouping import join_path, play_order
from apps.streaming.chunks import ChunkPlan, chunk_plan
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.profiles import PROFILES, Ladder, LadderMode, SegmentFormat, Source, ladder_fit
from apps.streaming.signing import stream_token_user_id
from apps.streaming.transcoder import aac_sample_rate, sources_lossless


def stream_token_user(*, token: str, track_id: int) -> User | None:
    """The active user a signed stream token was issued to for this track, or None."""
    user_id = stream_token_user_id(token, track_id=track_id)
    return None if user_id is None else get_user_model().objects.filter(pk=user_id, is_active=True).first()


def track_for_user(*, user: RequestUser, track_id: int) -> Track | None:
    return Track.objects.visible_to(user).listed().filter(pk=track_id).first()


def track_for_listener(*, user: RequestUser, token: str, track_id: int) -> Track | None:
    """The track a player may open: as the signed-in user sees it, or else as the user a signed stream token
    for this track was issued to sees it now (players that cannot send an Authorization header)."""
    if not user.is_authenticated:
        token_user = stream_token_user(token=token, track_id=track_id)
        if token_user is None:
            return None
        user = token_user
    return track_for_user(user=user, track_id=track_id)


def track_source_files(*, track: Track) -> list[AudioFile]:
    """The files that make up the track's timeline, in play order (as the scanner built it)."""
    files = [f for f in track.files.all() if not f.missing and not f.error]
    return sorted(files, key=play_order)


def file_path(audio_file: AudioFile) -> Path:
    return Path(join_path(audio_file.root, audio_file.path))


def track_ladder(*, files: Sequence[AudioFile]) -> Ladder:
    """The ladder fitted to the track's files (profiles.ladder_fit: no lossy rung above the source, a
    single-file AAC copied), or with STREAMING_LADDER=full the configured one, its lossless tier only for
    lossless sources (a FLAC copy of a decoded MP3 is five times the size and not one bit better)."""
    segment_format = SegmentFormat(settings.HLS_SEGMENT_FORMAT)
    configured = tuple(PROFILES[name] for name in settings.STREAMING_PROFILES)
    bitrates = [f.bitrate_kbps for f in files]
    source = Source(
        codecs=tuple(f.codec for f in files),
        bitrate_kbps=max(b for b in bitrates if b) if bitrates and all(bitrates) else None,
        lossless=sources_lossless([f.codec for f in files]),
    )
    if settings.STREAMING_LADDER == LadderMode.FITTED:
        profiles = ladder_fit(configured, segment_format, source)
    else:
        profiles = tuple(p for p in configured if source.lossless or not p.lossless)
        # a lossless-only ladder and a lossy source: the lossless tier after all
        profiles = profiles or configured
    ladder = Ladder(profiles, segment_format, settings.HLS_SEGMENT_SECONDS)
    chunk_seconds = settings.TRANSCODE_CHUNK_SECONDS
    if ladder.chunkable and _chunk_plan(files, ladder.segment_seconds, chunk_seconds) is not None:
        ladder = replace(ladder, chunk_seconds=chunk_seconds)
    return ladder


def track_chunk_plan(*, ladder: Ladder, files: Sequence[AudioFile]) -> ChunkPlan | None:
    """The chunk grid of a track's chunked ladder (None: it is made in one run)."""
    return _chunk_plan(files, ladder.segment_seconds, ladder.chunk_seconds) if ladder.chunk_seconds else None


def _chunk_plan(files: Sequence[AudioFile], segment_seconds: int, chunk_seconds: int) -> ChunkPlan | None:
    if not files:
        return None
    return chunk_plan(
        duration_ms=sum(f.duration_ms or 0 for f in files),
        sample_rate_hz=aac_sample_rate(files[0].sample_rate_hz),
        segment_seconds=segment_seconds,
        chunk_seconds=chunk_seconds,
    )


def track_rendition_key(*, track: Track, files: Sequence[AudioFile] | None = None) -> tuple[Ladder, str]:
    ladder = track_ladder(files=track_source_files(track=track) if files is None else files)
    return ladder, ladder.rendition_key(track.source_fingerprint)


def _current(track: Track, files: Sequence[AudioFile] | None) -> tuple[Ladder, list[Rendition]]:
    ladder, key = track_rendition_key(track=track, files=files)
    rows = {r.profile: r for r in Rendition.objects.filter(track=track, rendition_key=key)}
    return ladder, [rows[p.name] for p in ladder.profiles if p.name in rows]


def renditions_current(*, track: Track, files: Sequence[AudioFile] | None = None) -> list[Rendition]:
    """The rows of the track's current rendition key (any status), in ladder order."""
    return _current(track, files)[1]


def renditions_ready(*, track: Track, files: Sequence[AudioFile] | None = None) -> list[Rendition] | None:
    """Every profile ready under the current key, or None (not all ready yet). One query for the rows,
    plus one for the files unless they are given (or prefetched)."""
    ladder, rows = _current(track, files)
    ready = [r for r in rows if r.status == RenditionStatus.READY]
    return ready if len(ready) == len(ladder.profiles) else None
