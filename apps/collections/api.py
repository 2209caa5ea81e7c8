"""Collections API: favourites and ratings of tracks, albums and artists; playlists; smart playlists."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from apps.accounts.types import signed_in
from apps.collections import selectors, services
from apps.collections.models import Playlist
from apps.collections.playlist_files import M3U8_MAX_BYTES, m3u8_write
from apps.collections.serializers import (
    ArtistMarkOutput,
    BuiltinSmartPlaylistOutput,
    MarkOutput,
    PlaylistCreateInput,
    PlaylistDetailOutput,
    PlaylistEntriesAddInput,
    PlaylistEntriesMoveInput,
    PlaylistEntriesRemoveInput,
    PlaylistImportInput,
    PlaylistImportOutput,
    PlaylistOutput,
    PlaylistUpdateInput,
    RatingInput,
    SmartPlaylistInput,
    SmartPlaylistOutput,
    SmartPlaylistUpdateInput,
    SmartPreviewInput,
    SmartPreviewOutput,
)
from apps.collections.types import Markable, MarkState
from apps.library import selectors as library_selectors
from apps.library.serializers import TrackListOutput
from apps.ops.errors import ErrorOutput


def _parse(serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _mark_body(state: MarkState) -> dict[str, Any]:
    return MarkOutput(state).data


class _MarkView(APIView):
    """The item comes from a library selector, so one the caller may not see is a 404 and nothing changes."""

    def item(self, request: Request, key: Any) -> Markable:
        raise NotImplementedError


class _FavouriteView(_MarkView):
    @extend_schema(request=None, responses=MarkOutput)
    def put(self, request: Request, key: Any) -> Response:
        """Star it (starring again keeps the first time)."""
        item = self.item(request, key)
        return Response(_mark_body(services.favourite_set(user=signed_in(request), item=item, favourite=True)))

    @extend_schema(request=None, responses={200: MarkOutput})
    def delete(self, request: Request, key: Any) -> Response:
        """Unstar it (its rating stays)."""
        item = self.item(request, key)
        return Response(_mark_body(services.favourite_set(user=signed_in(request), item=item, favourite=False)))


class _RatingView(_MarkView):
    @extend_schema(request=RatingInput, responses=MarkOutput)
    def put(self, request: Request, key: Any) -> Response:
        """Rate it 1–5; `{"rating": null}` clears the rating (the star stays)."""
        rating = _parse(RatingInput, request.data)["rating"]
        item = self.item(request, key)
        return Response(_mark_body(services.rating_set(user=signed_in(request), item=item, rating=rating)))


class _TrackItem:
    def item(self, request: Request, key: Any) -> Markable:
        return library_selectors.track_get(user=request.user, track_id=key)


class _AlbumItem:
    def item(self, request: Request, key: Any) -> Markable:
        return library_selectors.album_get(user=request.user, album_id=key)


class _ArtistItem:
    def item(self, request: Request, key: Any) -> Markable:
        return selectors.artist_get(user=request.user, name=key)


class TrackFavouriteView(_TrackItem, _FavouriteView):
    pass


class TrackRatingView(_TrackItem, _RatingView):
    pass


class AlbumFavouriteView(_AlbumItem, _FavouriteView):
    pass


class AlbumRatingView(_AlbumItem, _RatingView):
    pass


class ArtistFavouriteView(_ArtistItem, _FavouriteView):
    pass


class ArtistRatingView(_ArtistItem, _RatingView):
    pass


class ArtistMarkListView(generics.GenericAPIView):
    serializer_class = ArtistMarkOutput

    @extend_schema(responses=ArtistMarkOutput(many=True))
    def get(self, request: Request) -> Response:
        """Your starred artists that a track you can see still credits, newest star first. (Starred tracks
        and albums: `GET /tracks?favourite=true&ordering=-favourited`, the same on `/albums`.)"""
        rows = selectors.artist_marks(user=request.user, favourites_only=True)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ArtistMarkOutput(page, many=True).data)


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description='The version you read (the `ETag`, e.g. `"7"`): a newer one answers 409 and changes nothing.',
)
EDIT_RESPONSES = {
    200: PlaylistDetailOutput,
    400: ErrorOutput,
    403: OpenApiResponse(ErrorOutput, description="Someone else's public playlist."),
    404: ErrorOutput,
    409: OpenApiResponse(ErrorOutput, description="The playlist changed since the `If-Match` version."),
}


def _expected_version(request: Request) -> int | None:
    """The version in `If-Match` (`"7"`, `W/"7"` or `7`); None without one or for `*`."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 9:
        raise exceptions.ValidationError({"If-Match": ['Expected the playlist\'s version, e.g. "7".']})
    return int(value)


def _playlist_response(request: Request, playlist: Playlist, *, status_code: int = status.HTTP_200_OK) -> Response:
    playlist = selectors.playlist_get(user=request.user, playlist_id=playlist.pk)
    entries = selectors.playlist_entries(user=request.user, playlist=playlist)
    body = PlaylistDetailOutput(playlist, context={"entries": entries}).data
    return Response(body, status=status_code, headers={"ETag": f'"{playlist.version}"'})


class PlaylistListView(generics.ListAPIView):
    serializer_class = PlaylistOutput

    def get_queryset(self):
        return selectors.playlist_list(user=self.request.user).order_by("name", "id")

    @extend_schema(request=PlaylistCreateInput, responses={201: PlaylistDetailOutput, 404: ErrorOutput})
    def post(self, request: Request) -> Response:
        """A new playlist (private unless `public`), with `track_ids` if given (404 for one you may not see)."""
        data = _parse(PlaylistCreateInput, request.data)
        playlist = services.playlist_create(owner=signed_in(request), **data)
        return _playlist_response(request, playlist, status_code=status.HTTP_201_CREATED)


class PlaylistDetailView(APIView):
    @extend_schema(responses=PlaylistDetailOutput)
    def get(self, request: Request, playlist_id: int) -> Response:
        """The playlist with the entries you may see; its `ETag` is its version."""
        return _playlist_response(request, selectors.playlist_get(user=request.user, playlist_id=playlist_id))

    @extend_schema(request=PlaylistUpdateInput, parameters=[IF_MATCH], responses=EDIT_RESPONSES)
    def patch(self, request: Request, playlist_id: int) -> Response:
        data = _parse(PlaylistUpdateInput, request.data)
        playlist = services.playlist_update(
            user=signed_in(request), playlist_id=playlist_id, expected_version=_expected_version(request), **data
        )
        return _playlist_response(request, playlist)

    @extend_schema(parameters=[IF_MATCH], responses={204: None, 403: ErrorOutput, 404: ErrorOutput, 409: ErrorOutput})
    def delete(self, request: Request, playlist_id: int) -> Response:
        services.playlist_delete(
            user=signed_in(request), playlist_id=playlist_id, expected_version=_expected_version(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlaylistEntriesAddView(APIView):
    @extend_schema(request=PlaylistEntriesAddInput, parameters=[IF_MATCH], responses=EDIT_RESPONSES)
    def post(self, request: Request, playlist_id: int) -> Response:
        """Insert tracks (at most 500 per call) before `position`, or at the end. A track you may not see:
        404, nothing added."""
        data = _parse(PlaylistEntriesAddInput, request.data)
        playlist = services.playlist_entries_add(
            user=signed_in(request), playlist_id=playlist_id, expected_version=_expected_version(request), **data
        )
        return _playlist_response(request, playlist)


class PlaylistEntriesRemoveView(APIView):
    @extend_schema(request=PlaylistEntriesRemoveInput, parameters=[IF_MATCH], responses=EDIT_RESPONSES)
    def post(self, request: Request, playlist_id: int) -> Response:
        """Remove the entries at these positions (at most 500 per call); the rest close up."""
        data = _parse(PlaylistEntriesRemoveInput, request.data)
        playlist = services.playlist_entries_remove(
            user=signed_in(request), playlist_id=playlist_id, expected_version=_expected_version(request), **data
        )
        return _playlist_response(request, playlist)


class PlaylistEntriesMoveView(APIView):
    @extend_schema(request=PlaylistEntriesMoveInput, parameters=[IF_MATCH], responses=EDIT_RESPONSES)
    def post(self, request: Request, playlist_id: int) -> Response:
        """Move `count` entries from `from_position` so the first lands at `to_position`."""
        data = _parse(PlaylistEntriesMoveInput, request.data)
        playlist = services.playlist_entries_move(
            user=signed_in(request), playlist_id=playlist_id, expected_version=_expected_version(request), **data
        )
        return _playlist_response(request, playlist)


M3U8_MEDIA_TYPE = "audio/x-mpegurl"


class PlaylistExportView(APIView):
    @extend_schema(responses={(200, M3U8_MEDIA_TYPE): OpenApiTypes.STR})
    def get(self, request: Request, playlist_id: int) -> HttpResponse:
        """The playlist as an extended M3U8: paths relative to their library's folder, #EXTINF per entry."""
        playlist = selectors.playlist_get(user=request.user, playlist_id=playlist_id)
        text = m3u8_write(selectors.playlist_m3u8_items(user=request.user, playlist=playlist))
        response = HttpResponse(text.encode(), content_type=f"{M3U8_MEDIA_TYPE}; charset=utf-8")
        filename = "".join(c if c.isalnum() or c in " -_." else "_" for c in playlist.name).strip() or "playlist"
        response["Content-Disposition"] = f'attachment; filename="{filename}.m3u8"'
        return response


class PlaylistImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": PlaylistImportInput}, responses={201: PlaylistImportOutput, 400: ErrorOutput}
    )
    def post(self, request: Request) -> Response:
        """A new playlist from an M3U/M3U8 upload (`file`). Paths are relative to a library's folder (or
        absolute inside one); lines that match no track you can see are listed in `unmatched`. Refused (400,
        naming the line): over 1 MiB, a NUL, not UTF-8, a `..`, an absolute path outside your libraries,
        more than 5000 entries."""
        user = signed_in(request)
        # Refused before the upload is read, when the client says how big it is.
        if int(request.META.get("CONTENT_LENGTH") or 0) > M3U8_MAX_BYTES + 64 * 1024:
            raise exceptions.ValidationError({"file": [f"The file is larger than {M3U8_MAX_BYTES} bytes."]})
        data = _parse(PlaylistImportInput, request.data)
        upload = data["file"]
        if upload.size > M3U8_MAX_BYTES:
            raise exceptions.ValidationError({"file": [f"The file is larger than {M3U8_MAX_BYTES} bytes."]})
        name = data.get("name") or (upload.name or "Imported").rsplit(".", 1)[0][:200] or "Imported"
        result = services.playlist_import_m3u8(owner=user, name=name, content=upload.read(), public=data["public"])
        body = PlaylistImportOutput({"playlist": result.playlist, "unmatched": result.unmatched}).data
        return Response(body, status=status.HTTP_201_CREATED)


SMART_PREVIEW_SIZE = 20


class SmartPlaylistListView(generics.ListAPIView):
    serializer_class = SmartPlaylistOutput

    def get_queryset(self):
        return selectors.smart_playlist_list(user=self.request.user).order_by("name", "id")

    @extend_schema(request=SmartPlaylistInput, responses={201: SmartPlaylistOutput, 400: ErrorOutput})
    def post(self, request: Request) -> Response:
        """A new smart playlist. A bad rule: 400 whose `fields` key is the path of the bad node."""
        data = _parse(SmartPlaylistInput, request.data)
        smart = services.smart_playlist_create(owner=signed_in(request), **data)
        return Response(SmartPlaylistOutput(smart).data, status=status.HTTP_201_CREATED)


class SmartPlaylistDetailView(APIView):
    @extend_schema(responses=SmartPlaylistOutput)
    def get(self, request: Request, smart_playlist_id: int) -> Response:
        smart = selectors.smart_playlist_get(user=request.user, smart_playlist_id=smart_playlist_id)
        return Response(SmartPlaylistOutput(smart).data)

    @extend_schema(request=SmartPlaylistUpdateInput, responses={200: SmartPlaylistOutput, 400: ErrorOutput})
    def patch(self, request: Request, smart_playlist_id: int) -> Response:
        data = _parse(SmartPlaylistUpdateInput, request.data)
        smart = services.smart_playlist_update(user=signed_in(request), smart_playlist_id=smart_playlist_id, **data)
        return Response(SmartPlaylistOutput(smart).data)

    @extend_schema(responses={204: None, 404: ErrorOutput})
    def delete(self, request: Request, smart_playlist_id: int) -> Response:
        services.smart_playlist_delete(user=signed_in(request), smart_playlist_id=smart_playlist_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SmartPlaylistTracksView(generics.ListAPIView):
    """The tracks the smart playlist selects now (evaluated at each read), with your marks."""

    serializer_class = TrackListOutput

    def get_queryset(self):
        smart = selectors.smart_playlist_get(user=self.request.user, smart_playlist_id=self.kwargs["smart_playlist_id"])
        return selectors.smart_playlist_tracks(user=self.request.user, rules=smart.rules)


class BuiltinSmartPlaylistListView(APIView):
    @extend_schema(responses=BuiltinSmartPlaylistOutput(many=True))
    def get(self, request: Request) -> Response:
        """The built-in smart playlists: recently added, most played, never played, favourites, books in
        progress."""
        return Response(BuiltinSmartPlaylistOutput(selectors.smart_playlist_builtins(), many=True).data)


class BuiltinSmartPlaylistTracksView(generics.ListAPIView):
    serializer_class = TrackListOutput

    def get_queryset(self):
        builtin = selectors.smart_playlist_builtin(slug=self.kwargs["slug"])
        return selectors.smart_playlist_tracks(user=self.request.user, rules=builtin.rules)


class SmartPreviewView(APIView):
    @extend_schema(request=SmartPreviewInput, responses={200: SmartPreviewOutput, 400: ErrorOutput})
    def post(self, request: Request) -> Response:
        """How many tracks these rules select, and the first 20 (the editor's live preview). Nothing stored."""
        rules = _parse(SmartPreviewInput, request.data)["rules"]
        services.smart_rules_check(rules=rules)
        tracks = selectors.smart_playlist_tracks(user=request.user, rules=rules)
        body = {"count": tracks.count(), "tracks": tracks[:SMART_PREVIEW_SIZE]}
        return Response(SmartPreviewOutput(body).data)
