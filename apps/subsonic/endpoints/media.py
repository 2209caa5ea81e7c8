"""Media retrieval: stream, download, hls.m3u8, getCoverArt, lyrics.

`stream` answers one progressive body, never HLS and never ffmpeg inside the request:
- the original file, when `format=raw`, or when the track is one file within `maxBitRate` (0: no limit) and
  no other format or offset is asked; behind nginx it leaves through X-Accel-Redirect;
- otherwise a ready rendition (the highest within `maxBitRate`), served as one fMP4 file (init segment +
  segments, as the REST API's /download does) with Range and a true Content-Length; `timeOffset` starts at
  the segment holding that second (transcodeOffset: within one segment, ~6 s);
- a rendition not built yet is queued (interactive) and the original is served meanwhile when there is one
  file; a book of many files that is not ready yet answers error 0 ("being prepared"), retried by apps.
`format=mp3` (or any other codec name) gets the AAC rendition: renditions are AAC, and making an MP3 would
mean running ffmpeg in the request. Clients read the Content-Type (audio/mp4) and play it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import m3u8
from django.conf import settings
from django.db.models import Q, prefetch_related_objects
from django.http import HttpResponse
from django.http.response import HttpResponseBase

from apps.library.artwork.storage import ArtworkStorage, size_snap, variant_name
from apps.library.models import AudioFile, Track
from apps.library.selectors import album_cover, track_cover, track_list, track_lyrics
from apps.ops.http import accel_redirect_response, file_response
from apps.streaming.profiles import SegmentFormat
from apps.streaming.selectors import track_for_user, track_source_files
from apps.streaming.services import (
    master_playlist_for_playback,
    rendition_download,
    renditions_for_playback,
    track_original_open,
)
from apps.streaming.services.playback import variants_for
from apps.streaming.storage import PLAYLIST_NAME, RenditionStorage
from apps.subsonic import mapping
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError, not_found

PREPARING = "This track is being prepared for streaming; try again in a few seconds."


def _track(call: Call) -> Track:
    track = track_for_user(user=call.user, track_id=mapping.parse_track_id(call.params.require("id")))
    if track is None:
        raise not_found("Song")
    # Its files once: the stream decision, the rendition key and the original each read them
    # (streaming.selectors.track_source_files takes prefetched files), three queries before.
    prefetch_related_objects([track], "files")
    return track


def _original(call: Call, track: Track) -> HttpResponseBase:
    original = track_original_open(track=track)
    if settings.USE_X_ACCEL_REDIRECT:
        original.file.close()  # nginx opens the file itself (the real path, checked on the descriptor)
        location = settings.X_ACCEL_REDIRECT_PREFIX + quote(str(original.real_path))
        return accel_redirect_response(location=location, content_type=original.content_type)
    return file_response(call.request, parts=[original.file], content_type=original.content_type)


def _suffix(audio_file: AudioFile) -> str:
    return audio_file.path.rsplit(".", 1)[-1].lower() if "." in audio_file.path else ""


def _rendition(call: Call, track: Track, *, max_kbps: int | None, offset_s: int) -> HttpResponseBase | None:
    """The best ready rendition within max_kbps from the segment holding offset_s, or None (queued)."""
    ready = renditions_for_playback(track=track)
    if ready is None:
        return None
    variants = variants_for(ready, codecs=None, max_bitrate_kbps=max_kbps or None)
    profile = variants[-1].profile
    download = rendition_download(track=track, profile=profile, ready=ready)
    if download is None:
        return None
    rendition, parts = download.rendition, download.parts
    first = 0
    if offset_s > 0:
        playlist = m3u8.load(
            str(RenditionStorage.from_settings().file(track.pk, rendition.rendition_key, profile, PLAYLIST_NAME))
        )
        head = len(parts) - len(playlist.segments)  # the init segment (fMP4), none for MPEG-TS
        start_s = 0.0
        for index, segment in enumerate(playlist.segments):
            if start_s + (segment.duration or 0) > offset_s:
                first = index
                break
            start_s += segment.duration or 0
        else:
            first = len(playlist.segments) - 1
        parts = parts[:head] + parts[head + first :]
    fmp4 = rendition.segment_format == SegmentFormat.FMP4
    return file_response(
        call.request,
        parts=parts,
        content_type="audio/mp4" if fmp4 else "video/mp2t",
        etag=f'"{rendition.rendition_key}-{profile}-{first}"',
        cache_control="private, max-age=31536000, immutable",
    )


@endpoint("stream")
def stream(call: Call) -> HttpResponseBase:
    params = call.params
    track = _track(call)
    max_kbps = params.number("maxBitRate", 0)
    requested = (params.get("format") or "").lower()
    offset_s = params.number("timeOffset", 0) or 0
    if track.duration_ms and offset_s * 1000 >= track.duration_ms:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"timeOffset {offset_s} is past the end of the song.")
    files = track_source_files(track=track)
    single = len(files) == 1
    if single and requested == "raw":
        return _original(call, track)
    source = files[0] if single else None
    within = source is not None and (not max_kbps or (source.bitrate_kbps or 0) <= max_kbps)
    same_format = source is not None and requested in ("", _suffix(source), source.codec)
    if single and within and same_format and offset_s == 0:
        return _original(call, track)
    answer = _rendition(call, track, max_kbps=max_kbps, offset_s=offset_s)
    if answer is not None:
        return answer
    if single:
        # Not transcoded yet (now queued, ahead of bulk work): the original plays meanwhile.
        return _original(call, track)
    raise SubsonicError(ErrorCode.GENERIC, PREPARING)


@endpoint("download")
def download(call: Call) -> HttpResponseBase:
    track = _track(call)
    if len(track_source_files(track=track)) == 1:
        return _original(call, track)
    # A book of many files has no one original: its best rendition, as one file.
    answer = _rendition(call, track, max_kbps=None, offset_s=0)
    if answer is None:
        raise SubsonicError(ErrorCode.GENERIC, PREPARING)
    return answer


@endpoint("hls", "hls.m3u8")
def hls(call: Call) -> HttpResponseBase:
    track = _track(call)
    bitrates = [int(value) for value in call.params.values("bitRate") if value.isdigit()]
    playlist = master_playlist_for_playback(
        track=track, codecs=None, max_bitrate_kbps=max(bitrates) if bitrates else None
    )
    if playlist is None:
        raise SubsonicError(ErrorCode.GENERIC, PREPARING)
    response = HttpResponse(playlist, "application/vnd.apple.mpegurl")
    response["Cache-Control"] = "private, max-age=60"
    return response


@endpoint("getCoverArt")
def get_cover_art(call: Call) -> HttpResponseBase:
    """A cover (an album's, or a track's own picture else its album's) at the stored size at or above `size`
    (64/128/300/600 px, the original above that or without `size`), as JPEG: what every app decodes."""
    value = call.params.require("id")
    size = call.params.number("size", None, minimum=1)
    kind, pk = mapping.parse_id(value, mapping.TRACK, mapping.ALBUM)
    assert isinstance(pk, int)
    cover = (
        track_cover(user=call.user, track_id=pk) if kind == mapping.TRACK else album_cover(user=call.user, album_id=pk)
    )
    if cover is None:
        raise not_found("Cover art")
    path = ArtworkStorage.from_settings().file(cover.hash, variant_name(size_snap(size), "jpeg"))
    cache_control = "private, max-age=86400"
    if settings.USE_X_ACCEL_REDIRECT:
        location = settings.X_ACCEL_REDIRECT_PREFIX + quote(str(path))
        return accel_redirect_response(location=location, content_type="image/jpeg", cache_control=cache_control)
    try:
        return file_response(call.request, parts=[path], content_type="image/jpeg", cache_control=cache_control)
    except FileNotFoundError:
        raise not_found("Cover art") from None


@endpoint("getLyricsBySongId")
def get_lyrics_by_song_id(call: Call) -> dict[str, Any]:
    """songLyrics: the synced lines (one structured entry, start in ms) and the plain text (another, unsynced)."""
    pk = mapping.parse_track_id(call.params.require("id"))
    lyrics = track_lyrics(user=call.user, track_id=pk)
    track = track_for_user(user=call.user, track_id=pk)
    if track is None:
        raise not_found("Song")
    head = {
        "displayArtist": ", ".join(track.artists) or track.album_artist or None,
        "displayTitle": track.title,
        "lang": lyrics.language or "xxx",  # ISO 639 "xxx": unknown, as the spec asks when none is tagged
        "offset": 0,
    }
    structured = []
    if lyrics.synced:
        structured.append(
            {**head, "synced": True, "line": [{"start": ms, "value": text} for ms, text in lyrics.synced]}
        )
    if lyrics.plain:
        structured.append({**head, "synced": False, "line": [{"value": text} for text in lyrics.plain.split("\n")]})
    return {"lyricsList": {"structuredLyrics": structured}}


@endpoint("getLyrics")
def get_lyrics(call: Call) -> dict[str, Any]:
    """The first visible song with this title (and artist, when given) that has lyrics: its plain text."""
    artist, title = call.params.get("artist"), call.params.get("title")
    tracks = track_list(user=call.user)
    if title:
        tracks = tracks.filter(title__iexact=title)
    if artist:
        tracks = tracks.filter(Q(artists__contains=[artist]) | Q(album_artist__iexact=artist))
    if not title and not artist:
        return {"lyrics": {}}
    for track in tracks.order_by("id")[:20]:
        lyrics = track_lyrics(user=call.user, track_id=track.pk)
        if not lyrics.empty:
            text = lyrics.plain or "\n".join(line for _ms, line in lyrics.synced)
            return {"lyrics": {"artist": ", ".join(track.artists) or None, "title": track.title, "value": text}}
    return {"lyrics": {}}
