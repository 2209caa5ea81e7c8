"""Stream decision, master playlist, direct play and download. Bytes of HLS renditions are served under
/hls/ (views.py, or nginx itself)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.library.models import Track
from apps.ops.http import accel_redirect_response, file_response
from apps.streaming import selectors
from apps.streaming.profiles import PROFILES, SegmentFormat
from apps.streaming.serializers import (
    CODECS_PARAMETER,
    DownloadInput,
    NotReadyOutput,
    StreamDecisionOutput,
    StreamInput,
)
from apps.streaming.services import (
    master_playlist_for_playback,
    rendition_download,
    stream_start,
    track_original_open,
)

RETRY_AFTER_S = 5
TOKEN_PARAMETER = OpenApiParameter(
    "token", OpenApiTypes.STR, description="The signed token of a URL from /stream (instead of auth headers)."
)
RANGE_RESPONSES = {
    (206, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The range asked for (`Range`)."),
    416: OpenApiResponse(description="A malformed or unsatisfiable `Range`: `Content-Range: bytes */size`."),
}


def _track(request: Request, track_id: int) -> Track:
    """The track, if the caller (authenticated, or holding a signed token for this track) may see it."""
    token = "" if request.user.is_authenticated else request.query_params.get("token", "")
    if not request.user.is_authenticated and not token:
        raise exceptions.NotAuthenticated()
    track = selectors.track_for_listener(user=request.user, token=token, track_id=track_id)
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

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


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
            user=cast(User, request.user),  # signed in: IsAuthenticated, the default permission, ran
            track=track,
            codecs=params.validated_data.get("codecs"),
            max_bitrate_kbps=params.validated_data.get("max_bitrate"),
            position_ms=params.validated_data.get("position_ms"),
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
        playlist = master_playlist_for_playback(
            track=track,
            codecs=params.validated_data.get("codecs"),
            max_bitrate_kbps=params.validated_data.get("max_bitrate"),
            position_ms=params.validated_data.get("position_ms"),
        )
        if playlist is None:
            return _not_ready(track)
        response = HttpResponse(playlist, "application/vnd.apple.mpegurl")
        response["Cache-Control"] = "private, max-age=60"
        return response


def _original(request: Request, track: Track, index: int | None) -> HttpResponseBase:
    original = track_original_open(track=track, index=index)
    if settings.USE_X_ACCEL_REDIRECT:
        # The real path, checked on the open descriptor: nginx's location follows no symlink (disable_symlinks,
        # deploy/nginx), so a link swapped in from now on is refused there too.
        original.file.close()  # nginx opens the file itself
        location = settings.X_ACCEL_REDIRECT_PREFIX + quote(str(original.real_path))
        return accel_redirect_response(location=location, content_type=original.content_type)
    return file_response(request, parts=[original.file], content_type=original.content_type)


class TrackFileView(StreamOpenView):
    @extend_schema(parameters=[TOKEN_PARAMETER], responses={(200, "audio/*"): OpenApiTypes.BINARY, **RANGE_RESPONSES})
    def get(self, request: Request, track_id: int) -> HttpResponseBase:
        return _original(request, _track(request, track_id), None)


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
        download = rendition_download(track=track, profile=profile)
        if download is None:
            return _not_ready(track)
        rendition = download.rendition
        fmp4 = rendition.segment_format == SegmentFormat.FMP4
        return file_response(
            request,
            parts=download.parts,
            content_type="audio/mp4" if fmp4 else "video/mp2t",
            etag=f'"{rendition.rendition_key}-{profile}"',
            filename=f"{track.title or track.pk} ({PROFILES[profile].name}).{'m4a' if fmp4 else 'ts'}",
            cache_control="private, max-age=31536000, immutable",
        )
