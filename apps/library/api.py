from __future__ import annotations

from django.http import HttpResponseRedirect
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.library import selectors
from apps.library.artwork.storage import ArtworkStorage, size_snap
from apps.library.filters import AlbumFilter, TrackFilter
from apps.library.models import Artwork, ScanStatus, ScanTrigger
from apps.library.serializers import (
    AlbumDetailOutput,
    AlbumOutput,
    CoverInput,
    LibraryOutput,
    LibraryStaffOutput,
    LoudnessOutput,
    LyricsOutput,
    NameCountFilterInput,
    NameCountOutput,
    ScanJobOutput,
    SearchInput,
    SearchOutput,
    TrackDetailOutput,
    TrackListOutput,
)
from apps.library.services import scan_request
from apps.ops.errors import ErrorOutput


def _library_serializer(request: Request) -> type[LibraryOutput]:
    # Folder paths on the server are for the people who administer it.
    return LibraryStaffOutput if request.user.is_staff else LibraryOutput


class LibraryListView(generics.ListAPIView):
    @extend_schema(responses=LibraryStaffOutput(many=True))
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.library_list(user=self.request.user)

    def get_serializer_class(self):
        return _library_serializer(self.request)


class LibraryDetailView(APIView):
    @extend_schema(responses=LibraryStaffOutput)
    def get(self, request: Request, library_id: int) -> Response:
        library = selectors.library_get(user=request.user, library_id=library_id)
        return Response(_library_serializer(request)(library).data)


class ScanNotQueued(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "queue_unavailable"


class LibraryScanView(APIView):
    @extend_schema(
        request=None,
        responses={
            202: ScanJobOutput,
            503: OpenApiResponse(ErrorOutput, description="The task queue is unreachable: nothing was queued."),
        },
    )
    def post(self, request: Request, library_id: int) -> Response:
        """Queue a scan (staff). If one is already queued or running, that one is returned."""
        library = selectors.library_get(user=request.user, library_id=library_id)
        if not request.user.is_staff:
            raise exceptions.PermissionDenied("Only staff can start a scan.")
        job, _created = scan_request(library=library, trigger=ScanTrigger.MANUAL, requested_by=request.user)
        if job.status == ScanStatus.FAILED:  # the broker could not take it (see scan_request)
            raise ScanNotQueued(job.failure)
        return Response(ScanJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ScanJobDetailView(APIView):
    @extend_schema(responses=ScanJobOutput)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(ScanJobOutput(selectors.scan_job_get(user=request.user, job_id=job_id)).data)


class TrackListView(generics.ListAPIView):
    serializer_class = TrackListOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = TrackFilter

    def get_queryset(self):
        return selectors.track_list(user=self.request.user).order_by("title", "id")


class TrackDetailView(APIView):
    @extend_schema(responses=TrackDetailOutput)
    def get(self, request: Request, track_id: int) -> Response:
        return Response(TrackDetailOutput(selectors.track_get(user=request.user, track_id=track_id)).data)


class TrackLyricsView(APIView):
    @extend_schema(responses={200: LyricsOutput, 404: ErrorOutput})
    def get(self, request: Request, track_id: int) -> Response:
        """The track's lyrics, synced lines with their start times and plain text (empty when it has none)."""
        return Response(LyricsOutput(selectors.track_lyrics(user=request.user, track_id=track_id)).data)


class TrackLoudnessView(APIView):
    @extend_schema(responses={200: LoudnessOutput, 404: ErrorOutput})
    def get(self, request: Request, track_id: int) -> Response:
        """The track's loudness (measured, else as tagged), its track and album gains, and for spoken word the
        silences a player may skip."""
        return Response(LoudnessOutput(selectors.track_loudness(user=request.user, track_id=track_id)).data)


class AlbumListView(generics.ListAPIView):
    serializer_class = AlbumOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = AlbumFilter

    def get_queryset(self):
        return selectors.album_list(user=self.request.user).order_by("title", "album_artist", "id")


class AlbumDetailView(APIView):
    @extend_schema(responses=AlbumDetailOutput)
    def get(self, request: Request, album_id: int) -> Response:
        return Response(AlbumDetailOutput(selectors.album_get(user=request.user, album_id=album_id)).data)


class _NameCountView(generics.GenericAPIView):
    column = ""
    serializer_class = NameCountOutput

    @extend_schema(parameters=[NameCountFilterInput], responses=NameCountOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = NameCountFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.name_counts(
            user=request.user,
            column=self.column,
            library_id=filters.validated_data.get("library"),
            query=filters.validated_data.get("q", ""),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(NameCountOutput(page, many=True).data)


class ArtistListView(_NameCountView):
    """Distinct artists of the tracks you can see, with track and album counts."""

    column = "artists"


class GenreListView(_NameCountView):
    """Distinct genres of the tracks you can see, with track and album counts."""

    column = "genres"


def _cover_redirect(request: Request, artwork: Artwork | None, what: str) -> HttpResponseRedirect:
    """302 to the signed, immutable /art/ URL of the size and format asked for (size snapped up to a stored one;
    format from the parameter, else WebP when the Accept header takes it, else JPEG)."""
    params = CoverInput(data=request.query_params)
    params.is_valid(raise_exception=True)
    if artwork is None:
        raise exceptions.NotFound(f"This {what} has no cover.")
    size_param = params.validated_data.get("size")
    size = size_snap(None if size_param in (None, "original") else int(size_param))
    fmt = params.validated_data.get("format")
    if fmt is None:
        fmt = "webp" if "image/webp" in request.headers.get("Accept", "") else "jpeg"
    response = HttpResponseRedirect(ArtworkStorage.url(artwork.hash, size, "jpeg" if fmt == "jpg" else fmt))
    # The answer depends on who asks (access) and on Accept; the /art/ URL it points to is cached for good.
    response["Cache-Control"] = "private, max-age=3600"
    response["Vary"] = "Accept, Authorization, Cookie"
    return response


_COVER_SCHEMA = extend_schema(
    parameters=[CoverInput],
    responses={302: OpenApiResponse(description="Location: the signed /art/ URL."), 404: ErrorOutput},
)


class _CoverView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False):
        # Accept names image types here (it picks the format): never a 406 because no JSON renderer is asked for.
        return super().perform_content_negotiation(request, force=True)


class AlbumCoverView(_CoverView):
    @_COVER_SCHEMA
    def get(self, request: Request, album_id: int) -> HttpResponseRedirect:
        """The album's cover: a redirect to its signed URL (404 for an album you may not see or without one)."""
        return _cover_redirect(request, selectors.album_cover(user=request.user, album_id=album_id), "album")


class TrackCoverView(_CoverView):
    @_COVER_SCHEMA
    def get(self, request: Request, track_id: int) -> HttpResponseRedirect:
        """The track's cover (its own picture, else its album's): a redirect to its signed URL."""
        return _cover_redirect(request, selectors.track_cover(user=request.user, track_id=track_id), "track")


class SearchView(APIView):
    @extend_schema(parameters=[SearchInput], responses={200: SearchOutput, 400: ErrorOutput})
    def get(self, request: Request) -> Response:
        """Artists, albums, tracks, shows, episodes and books you can see that match `q`, best first: exact,
        then prefix, then a word's prefix, then similar spellings ('motorhead' finds 'Motörhead', 'beetles'
        finds 'The Beatles')."""
        params = SearchInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        results = selectors.search(
            user=request.user, term=params.validated_data["q"], limit=params.validated_data["limit"]
        )
        return Response(SearchOutput(results).data)
