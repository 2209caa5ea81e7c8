"""What a request to play a track decides and may trigger: the stream decision (direct play or HLS) with the
start counted, the master playlist, a rendition downloaded as one file. Each queues the track's renditions
(interactive) when HLS is wanted and they are not ready, and queues them again when their folder was lost:
a request never hands out URLs that would 404.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.urls import reverse

from apps.library.models import Track
from apps.ops.errors import DomainError
from apps.streaming import metrics
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.playlists import master_playlist
from apps.streaming.profiles import PROFILES
from apps.streaming.selectors import renditions_current, renditions_ready, track_rendition_key, track_source_files
from apps.streaming.services.renditions import rendition_folder_lost, renditions_request
from apps.streaming.signing import stream_token
from apps.streaming.storage import RenditionStorage


class StreamMode(enum.StrEnum):
    DIRECT = "direct"
    HLS = "hls"


@dataclass
class StreamDecision:
    mode: StreamMode
    url: str
    reason: str
    ready: bool
    variants: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    growing: bool = False  # not ready, but the master is served already (a growing rendition)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "url": self.url,
            "reason": self.reason,
            "ready": self.ready,
            "growing": self.growing,
            "variants": self.variants,
            "files": self.files,
        }


def variants_for(
    renditions: Sequence[Rendition], *, codecs: Sequence[str] | None, max_bitrate_kbps: int | None
) -> list[Rendition]:
    """The ready renditions a client should be offered: codecs it plays, within its bitrate limit (at least
    the smallest one, so a low limit still plays)."""
    chosen = [r for r in renditions if codecs is None or PROFILES[r.profile].client_codec in codecs]
    chosen = chosen or [r for r in renditions if PROFILES[r.profile].client_codec == "aac"] or list(renditions)
    if max_bitrate_kbps is not None:
        within = [r for r in chosen if (r.average_bitrate_bps or 0) <= max_bitrate_kbps * 1000]
        chosen = within or sorted(chosen, key=lambda r: r.average_bitrate_bps or 0)[:1]
    return sorted(chosen, key=lambda r: r.peak_bitrate_bps or 0)


def stream_start(
    *,
    user: User,
    track: Track,
    codecs: Sequence[str] | None,
    max_bitrate_kbps: int | None,
    position_ms: int | None = None,
) -> StreamDecision:
    """A client starts playing: the stream decision, with the track's renditions queued (interactive) when
    HLS is what it should get (or will need, over its bitrate limit) and they are not ready, and the start
    counted."""
    decision, wants_renditions = _stream_decide(
        user=user, track=track, codecs=codecs, max_bitrate_kbps=max_bitrate_kbps, position_ms=position_ms
    )
    if wants_renditions:
        renditions_request(track_ids=[track.pk], interactive=True, position_ms=position_ms)
    metrics.stream_starts.labels(mode=decision.mode).inc()
    return decision


def _stream_decide(
    *,
    user: User,
    track: Track,
    codecs: Sequence[str] | None,
    max_bitrate_kbps: int | None,
    position_ms: int | None = None,
) -> tuple[StreamDecision, bool]:
    """Direct play when the client plays the source as it is, within its bitrate limit; HLS otherwise. And
    whether the renditions should be queued: HLS is the answer, or would be, and they are not ready.

    URLs carry a signed token, so players that cannot send an Authorization header can open them.
    """
    files = track_source_files(track=track)
    token = stream_token(user_id=user.pk, track_id=track.pk)
    params: dict[str, str | int] = {"token": token}
    if max_bitrate_kbps is not None:
        params["max_bitrate"] = max_bitrate_kbps
    if position_ms is not None:
        params["position_ms"] = position_ms
    if codecs is not None:
        params["codecs"] = ",".join(codecs)
    query = "?" + urlencode(params, safe=",")
    ready = renditions_ready(track=track, files=files)
    variants = variants_for(ready or [], codecs=codecs, max_bitrate_kbps=max_bitrate_kbps)
    hls = StreamDecision(
        mode=StreamMode.HLS,
        url=reverse("track-master", args=[track.pk]) + query,
        reason="",
        ready=ready is not None,
        growing=ready is None and _renditions_growing(track=track) is not None,
        variants=[
            {
                "profile": r.profile,
                "codecs": r.codecs,
                "bandwidth": r.peak_bitrate_bps,
                "average_bandwidth": r.average_bitrate_bps,
            }
            for r in variants
        ],
    )
    direct_files = [
        {
            "index": index,
            "url": reverse("track-file-n", args=[track.pk, index]) + f"?token={token}",
            "codec": f.codec,
            "bitrate_kbps": f.bitrate_kbps,
            "duration_ms": f.duration_ms,
            "size_bytes": f.size_bytes,
        }
        for index, f in enumerate(files)
    ]
    if len(files) != 1:
        hls.reason = f"{len(files)} files play as one timeline over HLS"
        hls.files = direct_files
        return hls, ready is None
    source = files[0]
    plays_codec = codecs is None or source.codec in codecs
    within = max_bitrate_kbps is None or (source.bitrate_kbps or 0) <= max_bitrate_kbps
    direct = StreamDecision(
        mode=StreamMode.DIRECT,
        url=reverse("track-file", args=[track.pk]) + f"?token={token}",
        reason="",
        ready=True,
        variants=hls.variants,
        files=direct_files,
    )
    if plays_codec and within:
        direct.reason = f"the client plays {source.codec} at {source.bitrate_kbps or '?'} kbps"
        return direct, False
    if plays_codec and ready is None:
        direct.reason = f"{source.bitrate_kbps} kbps is over max_bitrate, but HLS is not ready yet"
        return direct, True
    hls.reason = (
        f"the client does not play {source.codec}"
        if not plays_codec
        else f"{source.bitrate_kbps} kbps is over max_bitrate {max_bitrate_kbps}"
    )
    return hls, ready is None


def renditions_for_playback(*, track: Track, position_ms: int | None = None) -> list[Rendition] | None:
    """The track's ready renditions, or None after queueing them (interactive, a long track from
    `position_ms` first): not built yet, or their folder was deleted on disk behind our back (never hand out
    URLs that would 404)."""
    ready = renditions_ready(track=track)
    if ready is None:
        renditions_request(track_ids=[track.pk], interactive=True, position_ms=position_ms)
        return None
    if RenditionStorage.from_settings().is_lost(track.pk, ready[0].rendition_key):
        rendition_folder_lost(track_id=track.pk, rendition_key=ready[0].rendition_key)
        return None
    return ready


def master_playlist_for_playback(
    *, track: Track, codecs: Sequence[str] | None, max_bitrate_kbps: int | None, position_ms: int | None = None
) -> str | None:
    """The master playlist of the variants this client should get, or None when the renditions are not ready
    (then they are on their way). A growing rendition is served as soon as every profile has its first whole
    segment, at nominal bit rates, its variants pointing at the live playlists."""
    ready = renditions_for_playback(track=track, position_ms=position_ms)
    if ready is not None:
        variants = variants_for(ready, codecs=codecs, max_bitrate_kbps=max_bitrate_kbps)
        return master_playlist(track_id=track.pk, renditions=variants)
    growing = _renditions_growing(track=track)
    if growing is None:
        return None
    nominal = _nominal_bps(track=track, renditions=growing)
    for rendition in growing:  # variants_for filters on the average bit rate: the nominal one, for now
        rendition.average_bitrate_bps = nominal[rendition.profile]
    variants = variants_for(growing, codecs=codecs, max_bitrate_kbps=max_bitrate_kbps)
    return master_playlist(track_id=track.pk, renditions=variants, nominal_bps=nominal)


def _renditions_growing(*, track: Track) -> list[Rendition] | None:
    """The renditions of the current key being made, if every one has its first segment published: a run's
    rows all running; or, chunked, any not ready (a chunk that failed or waits for a worker takes nothing
    away from the others' segments)."""
    ladder, key = track_rendition_key(track=track)
    rows = renditions_current(track=track)
    if ladder.chunk_seconds:
        if not rows or all(r.status == RenditionStatus.READY for r in rows):
            return None
    elif not rows or any(r.status != RenditionStatus.RUNNING for r in rows):
        return None
    storage = RenditionStorage.from_settings()
    if not storage.growing_started(track.pk, rows[0].rendition_key, [r.profile for r in rows]):
        return None
    return rows


def _nominal_bps(*, track: Track, renditions: Sequence[Rendition]) -> dict[str, int]:
    """What each profile should come to: its bit rate, or the source's for a copy or a lossless tier."""
    source_kbps = max((f.bitrate_kbps or 0 for f in track_source_files(track=track)), default=0)
    nominal = {}
    for rendition in renditions:
        profile = PROFILES[rendition.profile]
        nominal[rendition.profile] = (profile.bitrate_kbps or source_kbps or 1411) * 1000
    return nominal


@dataclass(frozen=True)
class RenditionDownload:
    rendition: Rendition
    parts: list[Path]  # init segment first, then the segments: one file when concatenated


def rendition_download(
    *, track: Track, profile: str, ready: Sequence[Rendition] | None = None
) -> RenditionDownload | None:
    """One profile of the track's renditions as the parts of one file, or None when they are not ready (or
    their files were lost: then they are queued again). A profile outside the track's ladder is a 400.
    `ready`: what renditions_for_playback answered, when the caller asked it already (one query less)."""
    if ready is None:
        ready = renditions_for_playback(track=track)
    if ready is None:
        return None
    rendition = next((r for r in ready if r.profile == profile), None)
    if rendition is None:
        raise DomainError("Invalid input.", fields={"profile": [f"This track has no {profile} rendition."]})
    parts = RenditionStorage.from_settings().files(track.pk, rendition.rendition_key, profile)
    if parts is None:
        rendition_folder_lost(track_id=track.pk, rendition_key=rendition.rendition_key)
        return None
    return RenditionDownload(rendition=rendition, parts=parts)
