"""Podcasts API: subscriptions (subscribe, policies, refresh now, unsubscribe, OPML), episodes (list, new,
download now), mark all played. Thin: parse, call one service or selector, serialize."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from apps.accounts.types import signed_in
from apps.library.models import Library
from apps.ops.errors import ErrorOutput
from apps.podcasts import selectors
from apps.podcasts.access import may_manage
from apps.podcasts.models import FeedEpisode, Subscription
from apps.podcasts.opml import OpmlError, Outline, opml_build, opml_parse
from apps.podcasts.serializers import (
    CountOutput,
    EpisodeOutput,
    OpmlExportInput,
    OpmlImportInput,
    OpmlImportOutput,
    PolicyInput,
    SubscribeInput,
    SubscriptionOutput,
    policy,
)
from apps.podcasts.services.downloads import episodes_download_request
from apps.podcasts.services.listening import subscription_mark_played
from apps.podcasts.services.subscriptions import (
    NotAllowed,
    subscription_create,
    subscription_delete,
    subscription_refresh_now,
    subscription_update,
    subscriptions_import,
)


def _parse(serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _library(request: Request, library_id: int) -> Library:
    library = Library.objects.visible_to(request.user).filter(pk=library_id).first()
    if library is None:
        raise exceptions.ValidationError({"library": ["No such library."]})
    return library


class SubscriptionListView(generics.ListAPIView):
    serializer_class = SubscriptionOutput

    def get_queryset(self) -> QuerySet[Subscription]:
        return selectors.subscription_list(user=self.request.user)

    @extend_schema(
        request=SubscribeInput,
        responses={
            201: SubscriptionOutput,
            404: OpenApiResponse(ErrorOutput, description="You may not manage this library's subscriptions."),
            409: OpenApiResponse(ErrorOutput, description="The library is subscribed to this feed already."),
        },
    )
    def post(self, request: Request) -> Response:
        """Subscribe a podcast library to a feed (staff, or the podcasts permission on a granted library);
        the first refresh is queued."""
        data = _parse(SubscribeInput, request.data)
        subscription = subscription_create(
            user=signed_in(request), library=_library(request, data["library"]), feed_url=data["feed_url"],
            **policy(data),
        )  # fmt: skip
        return Response(SubscriptionOutput(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailView(APIView):
    @extend_schema(responses=SubscriptionOutput)
    def get(self, request: Request, subscription_id: int) -> Response:
        subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
        return Response(SubscriptionOutput(subscription).data)

    @extend_schema(request=PolicyInput, responses=SubscriptionOutput)
    def patch(self, request: Request, subscription_id: int) -> Response:
        """Change the auto-download and retention policies or the polling interval."""
        subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
        data = _parse(PolicyInput, request.data)
        subscription = subscription_update(user=signed_in(request), subscription=subscription, **data)
        return Response(SubscriptionOutput(subscription).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, subscription_id: int) -> Response:
        """Unsubscribe. Downloaded episodes stay in the library as tracks."""
        subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
        subscription_delete(user=signed_in(request), subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionRefreshView(APIView):
    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request, subscription_id: int) -> Response:
        """Refresh now (a success also lifts an auto-download pause)."""
        subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
        subscription_refresh_now(user=signed_in(request), subscription=subscription)
        return Response(status=status.HTTP_202_ACCEPTED)


class SubscriptionPlayedView(APIView):
    @extend_schema(request=None, responses=CountOutput)
    def post(self, request: Request, subscription_id: int) -> Response:
        """Mark every downloaded episode of the show played, for you."""
        subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
        return Response({"count": subscription_mark_played(user=signed_in(request), subscription=subscription)})


def _episodes_output(request: Request, episodes: list[FeedEpisode]) -> Any:
    listened = selectors.episodes_listened(user=request.user, episodes=episodes)
    return EpisodeOutput(episodes, many=True, context={"listened": listened}).data


class _EpisodePage(generics.ListAPIView):
    serializer_class = EpisodeOutput

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None
        return self.get_paginated_response(_episodes_output(request, page))


class EpisodeListView(_EpisodePage):
    """A show's episodes, newest first: every item its feed ever listed, downloaded or not."""

    def get_queryset(self) -> QuerySet[FeedEpisode]:
        subscription_id = self.kwargs["subscription_id"]
        subscription = selectors.subscription_get(user=self.request.user, subscription_id=subscription_id)
        return selectors.episode_list(user=self.request.user, subscription=subscription)


class NewEpisodeListView(_EpisodePage):
    """New episodes across every show you can see: downloaded, not started, not finished; newest first."""

    def get_queryset(self) -> QuerySet[FeedEpisode]:
        return selectors.episodes_new(user=self.request.user)


class EpisodeDetailView(APIView):
    @extend_schema(responses=EpisodeOutput)
    def get(self, request: Request, episode_id: int) -> Response:
        episode = selectors.episode_get(user=request.user, episode_id=episode_id)
        return Response(_episodes_output(request, [episode])[0])


class EpisodeDownloadView(APIView):
    @extend_schema(request=None, responses={202: EpisodeOutput})
    def post(self, request: Request, episode_id: int) -> Response:
        """Download now (queued). Answers with the episode; already queued or downloaded: unchanged."""
        episode = selectors.episode_get(user=request.user, episode_id=episode_id)
        if not may_manage(signed_in(request), episode.subscription.library):
            raise NotAllowed("Not found.")
        episodes_download_request(episode_ids=[episode.pk])
        episode = selectors.episode_get(user=request.user, episode_id=episode_id)
        return Response(_episodes_output(request, [episode])[0], status=status.HTTP_202_ACCEPTED)


class OpmlView(APIView):
    @extend_schema(
        parameters=[OpmlExportInput],
        responses={(200, "text/x-opml"): OpenApiResponse(OpenApiTypes.STR, description="OPML 2.0")},
    )
    def get(self, request: Request) -> HttpResponse:
        """Export the subscriptions you can see (of one library with `?library=`) as OPML."""
        data = _parse(OpmlExportInput, request.query_params)
        subscriptions = selectors.subscription_list(user=request.user)
        if "library" in data:
            subscriptions = subscriptions.filter(library_id=data["library"])
        body = opml_build(
            title="Revenge podcasts",
            outlines=(Outline(title=s.title or s.feed_url, feed_url=s.feed_url) for s in subscriptions),
        )
        response = HttpResponse(body, content_type="text/x-opml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="revenge-podcasts.opml"'
        return response

    @extend_schema(
        request=OpmlImportInput,
        responses={
            200: OpmlImportOutput,
            404: OpenApiResponse(ErrorOutput, description="You may not manage this library's subscriptions."),
        },
    )
    def post(self, request: Request) -> Response:
        """Import an OPML file's feeds into a podcast library (each one's first refresh is queued)."""
        data = _parse(OpmlImportInput, request.data)
        library = _library(request, data["library"])
        try:
            outlines = opml_parse(data["opml"].encode())
        except OpmlError as exc:
            raise exceptions.ValidationError({"opml": [str(exc)]}) from None
        result = subscriptions_import(
            user=signed_in(request), library=library, feed_urls=[o.feed_url for o in outlines], **policy(data)
        )
        return Response(
            {"created": [s.pk for s in result.created], "already": result.already, "refused": result.refused}
        )
