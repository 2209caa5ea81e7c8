"""Stream decision, master playlist, direct play and download. Bytes of HLS renditions are served under
/hls/ (views.py, or nginx itself)."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.library.models import Track
from apps.library.services.originals import OriginalRefused, audio_file_open
from apps.ops.http import accel_redirect_response, file_response
from apps.streaming import selectors
from apps.streaming.playlists import master_playlist
from apps.streaming.profiles import PROFILES
from apps.streaming.serializers import (
    CODECS_PARAMETER,
    DownloadInput,
    NotReadyOutput,
    StreamDecisionOutput,
    StreamInput,
)
from apps.streaming.services import rendition_folder_lost, renditions_for_playback, stream_start

RETRY_AFTER_S = 5
MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "aac": "audio/mp4",
    "alac": "audio/mp4",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "vorbis": "audio/ogg",
    "pcm": "audio/wav",
}
TOKEN_PARAMETER = OpenApiParameter(
    "token", OpenApiTypes.STR, description="The signed token of a URL from /stream (instead of auth headers)."
)
RANGE_RESPONSES = {
    (206, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The range asked for (`Range`)."),
    416: OpenApiResponse(description="A malformed or unsatisfiable `Range`: `Content-Range: bytes */size`."),
}


def _track(request: Request, track_id: int) -> Track:
    """The track, if the caller (authenticated, or holding a signed token for this track) may see it."""
    user = request.user
    if not user.is_authenticated:
        token = request.query_params.get("token", "")
        if not token:
            raise exceptions.NotAuthenticated()
        user = selectors.stream_token_user(token=token, track_id=track_id)
        if user is None:
            raise exceptions.NotFound("No such track.")
    track = selectors.track_for_user(user=user, track_id=track_id)
    if track is None:
        raise exceptions.NotFound("No such track.")
    return track


def _not_ready(track: Track) -> Response:
    rows = selectors.renditions_current(track=track)
    body = {
        "status": "preparing",
        "retry_after_s": RETRY_AFTER_S,
        "renditions": [{"profile": r.profile, "status": r.status, "error": r.error[-500:]} for r in rows],
    }
    return Response(body, status=202, headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"})


class _MediaNegotiation(BaseContentNegotiation):
    """Players send `Accept: audio/*` or `application/vnd.apple.mpegurl` for media: DRF's negotiation,
    which only knows the JSON renderer, would answer 406 before the view runs. The media answer is built
    by the view itself; JSON is only for the errors and the 202 "preparing" body."""

    def select_parser(self, request: Request, parsers: list) -> object:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class StreamOpenView(APIView):
    """Public endpoints that also accept a signed `token` instead of authentication."""

    permission_classes = [permissions.AllowAny]
    content_negotiation_class = _MediaNegotiation


class StreamDecisionView(APIView):
    @extend_schema(parameters=[StreamInput, CODECS_PARAMETER], responses=StreamDecisionOutput)
    def get(self, request: Request, track_id: int) -> Response:
        params = StreamInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        track = _track(request, track_id)
        decision = stream_start(
            user=request.user,
            track=track,
            codecs=params.validated_data.get("codecs"),
            max_bitrate_kbps=params.validated_data.get("max_bitrate"),
        )
        return Response(decision.as_dict(), headers={"Cache-Control": "private, no-store"})


class MasterPlaylistView(StreamOpenView):
    @extend_schema(
        parameters=[StreamInput, CODECS_PARAMETER, TOKEN_PARAMETER],
        responses={
            (200, "application/vnd.apple.mpegurl"): OpenApiResponse(OpenApiTypes.STR, description="HLS master"),
            202: NotReadyOutput,
        },
    )
    def get(self, request: Request, track_id: int) -> HttpResponseBase:
        params = StreamInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        track = _track(request, track_id)
        ready = renditions_for_playback(track=track)
        if ready is None:
            return _not_ready(track)
        variants = selectors.variants_for(
            ready, codecs=params.validated_data.get("codecs"), max_bitrate_kbps=params.validated_data.get("max_bitrate")
        )
        response = HttpResponse(
            master_playlist(track_id=track.pk, renditions=variants), "application/vnd.apple.mpegurl"
        )
        response["Cache-Control"] = "private, max-age=60"
        return response


def _original(request: Request, track: Track, index: int) -> HttpResponseBase:
    files = selectors.track_source_files(track=track)
    if not 0 <= index < len(files):
        raise exceptions.NotFound("No such file in this track.")
    audio_file = files[index]
    content_type = MEDIA_TYPES.get(audio_file.codec, "application/octet-stream")
    if audio_file.format == "mp4" and audio_file.codec in ("aac", "alac"):
        content_type = "audio/mp4"
    try:
        original = audio_file_open(audio_file=audio_file)
    except FileNotFoundError:
        raise exceptions.NotFound("The file is missing on disk; a rescan will update the library.") from None
    except OriginalRefused:
        raise exceptions.NotFound("The file changed on disk since the scan; a rescan will update it.") from None
    if settings.USE_X_ACCEL_REDIRECT:
        # The real path, checked above: nginx's location follows no symlink (disable_symlinks, deploy/nginx),
        # so a link swapped in from now on is refused there too.
        original.file.close()  # nginx opens the file itself
        location = settings.X_ACCEL_REDIRECT_PREFIX + quote(str(original.real_path))
        return accel_redirect_response(location=location, content_type=content_type)
    return file_response(request, parts=[original.file], content_type=content_type)


class TrackFileView(StreamOpenView):
    @extend_schema(parameters=[TOKEN_PARAMETER], responses={(200, "audio/*"): OpenApiTypes.BINARY, **RANGE_RESPONSES})
    def get(self, request: Request, track_id: int) -> HttpResponseBase:
        track = _track(request, track_id)
        files = selectors.track_source_files(track=track)
        if len(files) != 1:
            raise exceptions.NotFound(f"This track is made of {len(files)} files: use /files/<n>.")
        return _original(request, track, 0)


class TrackFileIndexView(StreamOpenView):
    @extend_schema(parameters=[TOKEN_PARAMETER], responses={(200, "audio/*"): OpenApiTypes.BINARY, **RANGE_RESPONSES})
    def get(self, request: Request, track_id: int, index: int) -> HttpResponseBase:
        return _original(request, _track(request, track_id), index)


class TrackDownloadView(StreamOpenView):
    @extend_schema(
        parameters=[DownloadInput, TOKEN_PARAMETER],
        responses={(200, "audio/mp4"): OpenApiTypes.BINARY, 202: NotReadyOutput, **RANGE_RESPONSES},
    )
    def get(self, request: Request, track_id: int) -> HttpResponseBase:
        params = DownloadInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        profile = params.validated_data["profile"]
        track = _track(request, track_id)
        ready = renditions_for_playback(track=track)
        if ready is None:
            return _not_ready(track)
        rendition = next((r for r in ready if r.profile == profile), None)
        if rendition is None:
            raise exceptions.ValidationError({"profile": [f"This track has no {profile} rendition."]})
        folder = selectors.rendition_folder(track_id=track.pk, rendition_key=rendition.rendition_key) / profile
        parts = selectors.rendition_files(folder)
        if parts is None:
            rendition_folder_lost(track_id=track.pk, rendition_key=rendition.rendition_key)
            return _not_ready(track)
        fmp4 = rendition.segment_format == "fmp4"
        return file_response(
            request,
            parts=parts,
            content_type="audio/mp4" if fmp4 else "video/mp2t",
            etag=f'"{rendition.rendition_key}-{profile}"',
            filename=f"{track.title or track.pk} ({PROFILES[profile].name}).{'m4a' if fmp4 else 'ts'}",
            cache_control="private, max-age=31536000, immutable",
        )
