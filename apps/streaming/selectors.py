"""Reads for streaming, scoped to what the user may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import m3u8
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.library.models import AudioFile, Track
from apps.library.scanner.grouping import join_path, play_order
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.profiles import PROFILES, Ladder
from apps.streaming.signing import stream_token, stream_token_user_id
from apps.streaming.transcoder import LOSSLESS_SOURCE_CODECS


def stream_token_user(*, token: str, track_id: int):
    """The active user a signed stream token was issued to for this track, or None."""
    user_id = stream_token_user_id(token, track_id=track_id)
    return None if user_id is None else get_user_model().objects.filter(pk=user_id, is_active=True).first()


def track_for_user(*, user, track_id: int) -> Track | None:
    return Track.objects.visible_to(user).listed().filter(pk=track_id).first()


def track_source_files(*, track: Track) -> list[AudioFile]:
    """The files that make up the track's timeline, in play order (as the scanner built it)."""
    files = [f for f in track.files.all() if not f.missing and not f.error]
    return sorted(files, key=play_order)


def file_path(audio_file: AudioFile) -> Path:
    return Path(join_path(audio_file.root, audio_file.path))


def track_ladder(*, files: Sequence[AudioFile]) -> Ladder:
    """The configured ladder; the lossless tier only for lossless sources (a FLAC copy of a decoded MP3 is
    five times the size and not one bit better)."""
    lossless_source = bool(files) and all(f.codec in LOSSLESS_SOURCE_CODECS for f in files)
    profiles = tuple(
        PROFILES[name] for name in settings.STREAMING_PROFILES if lossless_source or not PROFILES[name].lossless
    )
    if not profiles:  # a lossless-only ladder and a lossy source: the lossless tier after all
        profiles = tuple(PROFILES[name] for name in settings.STREAMING_PROFILES)
    return Ladder(profiles, settings.HLS_SEGMENT_FORMAT, settings.HLS_SEGMENT_SECONDS)


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


def rendition_folder(*, track_id: int, rendition_key: str) -> Path:
    return settings.RENDITIONS_ROOT / str(track_id) / rendition_key


@dataclass
class StreamDecision:
    mode: str  # "direct" | "hls"
    url: str
    reason: str
    ready: bool
    variants: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    # HLS is what this client should get, but the renditions are not ready: the caller queues them.
    needs_transcode: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "url": self.url,
            "reason": self.reason,
            "ready": self.ready,
            "variants": self.variants,
            "files": self.files,
        }


def variants_for(renditions: Sequence[Rendition], *, codecs: Sequence[str] | None, max_bitrate_kbps: int | None):
    """The ready renditions a client should be offered: codecs it plays, within its bitrate limit (at least
    the smallest one, so a low limit still plays)."""
    chosen = [r for r in renditions if codecs is None or PROFILES[r.profile].client_codec in codecs]
    chosen = chosen or [r for r in renditions if PROFILES[r.profile].client_codec == "aac"] or list(renditions)
    if max_bitrate_kbps is not None:
        within = [r for r in chosen if (r.average_bitrate_bps or 0) <= max_bitrate_kbps * 1000]
        chosen = within or sorted(chosen, key=lambda r: r.average_bitrate_bps or 0)[:1]
    return sorted(chosen, key=lambda r: r.peak_bitrate_bps or 0)


def stream_decide(*, user, track: Track, codecs: Sequence[str] | None, max_bitrate_kbps: int | None) -> StreamDecision:
    """Direct play when the client plays the source as it is, within its bitrate limit; HLS otherwise.

    URLs carry a signed token, so players that cannot send an Authorization header can open them.
    Whether a transcode must be queued is the caller's business (services.renditions_request).
    """
    files = track_source_files(track=track)
    token = stream_token(user_id=user.pk, track_id=track.pk)
    params: dict[str, str | int] = {"token": token}
    if max_bitrate_kbps is not None:
        params["max_bitrate"] = max_bitrate_kbps
    if codecs is not None:
        params["codecs"] = ",".join(codecs)
    query = "?" + urlencode(params, safe=",")
    ready = renditions_ready(track=track, files=files)
    variants = variants_for(ready or [], codecs=codecs, max_bitrate_kbps=max_bitrate_kbps)
    hls = StreamDecision(
        mode="hls",
        url=reverse("track-master", args=[track.pk]) + query,
        reason="",
        ready=ready is not None,
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
    hls.needs_transcode = ready is None
    if len(files) != 1:
        hls.reason = f"{len(files)} files play as one timeline over HLS"
        hls.files = direct_files
        return hls
    source = files[0]
    plays_codec = codecs is None or source.codec in codecs
    within = max_bitrate_kbps is None or (source.bitrate_kbps or 0) <= max_bitrate_kbps
    direct = StreamDecision(
        mode="direct",
        url=reverse("track-file", args=[track.pk]) + f"?token={token}",
        reason="",
        ready=True,
        variants=hls.variants,
        files=direct_files,
    )
    if plays_codec and within:
        direct.reason = f"the client plays {source.codec} at {source.bitrate_kbps or '?'} kbps"
        return direct
    if plays_codec and ready is None:
        direct.reason = f"{source.bitrate_kbps} kbps is over max_bitrate, but HLS is not ready yet"
        direct.needs_transcode = True
        return direct
    hls.reason = (
        f"the client does not play {source.codec}"
        if not plays_codec
        else f"{source.bitrate_kbps} kbps is over max_bitrate {max_bitrate_kbps}"
    )
    return hls


def rendition_files(folder: Path) -> list[Path] | None:
    """A published rendition's files in play order (init segment first), or None if it is gone."""
    try:
        playlist = m3u8.load(str(folder / "index.m3u8"))
    except FileNotFoundError:
        return None
    files = [folder / m.uri for m in playlist.segment_map or [] if m.uri]
    files += [folder / segment.uri for segment in playlist.segments]
    return files if all(f.is_file() for f in files) else None
