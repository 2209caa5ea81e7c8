"""Collections API: favourites and ratings of tracks, albums and artists; playlists; smart playlists."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from apps.collections import selectors, services
from apps.collections.serializers import ArtistMarkOutput, MarkOutput, RatingInput
from apps.collections.types import Markable, MarkState
from apps.library import selectors as library_selectors


def _parse(serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _signed_in(request: Request) -> User:
    """The user a write is made for: the API's default permission (signed in) lets no one else this far."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


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
        return Response(_mark_body(services.favourite_set(user=_signed_in(request), item=item, favourite=True)))

    @extend_schema(request=None, responses=MarkOutput)
    def delete(self, request: Request, key: Any) -> Response:
        """Unstar it (its rating stays)."""
        item = self.item(request, key)
        return Response(_mark_body(services.favourite_set(user=_signed_in(request), item=item, favourite=False)))


class _RatingView(_MarkView):
    @extend_schema(request=RatingInput, responses=MarkOutput)
    def put(self, request: Request, key: Any) -> Response:
        """Rate it 1–5; `{"rating": null}` clears the rating (the star stays)."""
        rating = _parse(RatingInput, request.data)["rating"]
        item = self.item(request, key)
        return Response(_mark_body(services.rating_set(user=_signed_in(request), item=item, rating=rating)))


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
