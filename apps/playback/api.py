"""Playback API: progress, batch sync, played marks, sessions, bookmarks, play queue, listens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from apps.accounts.types import signed_in
from apps.ops.errors import DomainError, ErrorOutput, error_body
from apps.ops.pagination import PageInput
from apps.playback import selectors, services
from apps.playback.metrics import progress_updates
from apps.playback.models import Bookmark, Listen, PlaybackSession
from apps.playback.progress.rules import ProgressState
from apps.playback.progress.selectors import MergedNewestFirst, TrackForProgress
from apps.playback.progress.store import progress_output, progress_output_unplayed
from apps.playback.serializers import (
    BookmarkInput,
    BookmarkOutput,
    BookmarkUpdateInput,
    DeviceQueryInput,
    ListenOutput,
    ProgressBatchInput,
    ProgressBatchItemInput,
    ProgressBatchOutput,
    ProgressInput,
    ProgressListInput,
    ProgressListState,
    ProgressOutput,
    ProgressPageOutput,
    ProgressRowOutput,
    ProgressStaleOutput,
    ProgressSyncOutput,
    QueueInput,
    QueueOutput,
    SessionHeartbeatInput,
    SessionOutput,
    SessionStartInput,
    SessionStartOutput,
)

DEVICE_PARAMETER = OpenApiParameter("device_id", OpenApiTypes.STR, description="The device (1–64 characters).")
DEVICE_REQUIRED_PARAMETER = OpenApiParameter(
    "device_id", OpenApiTypes.STR, required=True, description="The device (1–64 characters)."
)
STALE_MESSAGE = "A newer update is stored: this device is behind. `current` is the stored state."


def _parse(serializer_class: type[Serializer], data: Any, *, counts_as_progress: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        if counts_as_progress:
            progress_updates.labels(result="invalid").inc()
        raise exceptions.ValidationError(serializer.errors)
    return serializer.validated_data


def _progress_body(track: TrackForProgress, state: ProgressState | None) -> dict[str, Any]:
    if state is None:
        return progress_output_unplayed(track_id=track.track_id, duration_ms=track.duration_ms)
    return progress_output(state)


def _stale_body(state: ProgressState) -> dict[str, Any]:
    return {**error_body("stale", STALE_MESSAGE), "current": progress_output(state)}


def _outcome_response(outcome: services.ProgressOutcome) -> Response:
    if outcome.stale:
        return Response(_stale_body(outcome.state), status=status.HTTP_409_CONFLICT)
    return Response(progress_output(outcome.state))


class ProgressDetailView(APIView):
    @extend_schema(responses=ProgressOutput)
    def get(self, request: Request, track_id: int) -> Response:
        track, state = selectors.progress_get(user=request.user, track_id=track_id)
        return Response(_progress_body(track, state))

    @extend_schema(request=ProgressInput, responses={200: ProgressOutput, 409: ProgressStaleOutput})
    def put(self, request: Request, track_id: int) -> Response:
        """Store this device's position. 409 (with `current`) when a newer update is already stored."""
        data = _parse(ProgressInput, request.data, counts_as_progress=True)
        outcome = services.progress_record(user=signed_in(request), track_id=track_id, **data)
        return _outcome_response(outcome)

    @extend_schema(parameters=[DEVICE_PARAMETER], responses={200: ProgressOutput})
    def delete(self, request: Request, track_id: int) -> Response:
        """Reset: back to the start, not completed (the play count and listens stay)."""
        device = _parse(DeviceQueryInput, request.query_params).get("device_id")
        state = services.progress_reset(user=signed_in(request), track_id=track_id, **_device(device))
        return Response(progress_output(state))


def _device(device_id: str | None) -> dict[str, str]:
    return {"device_id": device_id} if device_id else {}


class ProgressListView(generics.GenericAPIView):
    @extend_schema(
        operation_id="progress_list",
        parameters=[
            PageInput,  # the answer is not a plain list (see `since`), so the pagination is not implied
            OpenApiParameter(
                "state",
                OpenApiTypes.STR,
                enum=[value.value for value in ProgressListState],
                description='in_progress: started and not completed ("continue listening"), newest first.',
            ),
            OpenApiParameter(
                "since",
                OpenApiTypes.STR,
                description="RFC 3339 or epoch ms: every change after it, "
                "oldest first, unpaginated, with `next_since` for the next call.",
            ),
        ],  # fmt: skip
        responses=PolymorphicProxySerializer(
            component_name="ProgressListOutput",
            serializers=[ProgressPageOutput, ProgressSyncOutput],
            resource_type_field_name=None,
            many=False,
        ),
    )
    def get(self, request: Request) -> Response:
        params = _parse(ProgressListInput, request.query_params)
        if "since" in params:
            changed = selectors.progress_changed_since(user=request.user, since=params["since"])
            next_since = changed[-1].state.updated_at if changed else params["since"]
            return Response(ProgressSyncOutput({"results": changed, "next_since": next_since}).data)
        if params["state"] == ProgressListState.IN_PROGRESS:
            rows = selectors.progress_in_progress(user=request.user)
        else:
            rows = selectors.progress_all(user=request.user)
        # Not a QuerySet nor a full Sequence, but what the paginator uses of one: count() and a slice.
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        return self.get_paginated_response(ProgressRowOutput(page, many=True).data)


class ProgressBatchView(APIView):
    @extend_schema(request=ProgressBatchInput, responses={200: ProgressBatchOutput})
    def post(self, request: Request) -> Response:
        """Many updates (an offline device), each judged like a PUT; one result per update, in order."""
        items = _parse(ProgressBatchInput, request.data)["updates"]
        parsed: list[services.DeviceUpdate | None] = []
        errors: dict[int, dict[str, Any]] = {}
        for index, item in enumerate(items):
            serializer = ProgressBatchItemInput(data=item if isinstance(item, dict) else {})
            if not isinstance(item, dict) or not serializer.is_valid():
                progress_updates.labels(result="invalid").inc()
                fields = serializer.errors if isinstance(item, dict) else {"update": ["Expected an object."]}
                errors[index] = {"status": 400, "error": _validation_error(fields)}
                parsed.append(None)
                continue
            data = dict(serializer.validated_data)
            parsed.append(services.DeviceUpdate(track_id=data.pop("track"), **data))
        valid = [item for item in parsed if item is not None]
        outcomes = iter(services.progress_record_many(user=signed_in(request), updates=valid))
        results = []
        for index, item in enumerate(parsed):
            track = items[index].get("track") if isinstance(items[index], dict) else None
            result: dict[str, Any] = {"track": track if type(track) is int else None}
            if item is None:
                result.update(errors[index])
            else:
                result.update(_batch_result(next(outcomes)))
            results.append(result)
        return Response({"results": results})


def _validation_error(fields: dict[str, Any]) -> dict[str, Any]:
    detail = exceptions.ValidationError(fields).detail
    assert isinstance(detail, dict)  # a dict of fields stays one
    return error_body("invalid", "Invalid input.", detail)["error"]


def _batch_result(outcome: services.ProgressOutcome | Exception) -> dict[str, Any]:
    if isinstance(outcome, Http404):
        return {"status": 404, "error": error_body("not_found", "Not found.")["error"]}
    if isinstance(outcome, DomainError):
        error = error_body(outcome.code, outcome.message, outcome.fields)["error"]
        return {"status": outcome.status_code, "error": error}
    assert isinstance(outcome, services.ProgressOutcome)
    if outcome.stale:
        return {"status": 409, **_stale_body(outcome.state)}
    return {"status": 200, "progress": progress_output(outcome.state)}


class TrackPlayedView(APIView):
    @extend_schema(request=None, parameters=[DEVICE_PARAMETER], responses={200: ProgressOutput})
    def post(self, request: Request, track_id: int) -> Response:
        """Mark played: completed, and one more play unless the current play-through already counted."""
        device = _parse(DeviceQueryInput, request.query_params).get("device_id")
        state = services.progress_mark_played(user=signed_in(request), track_id=track_id, **_device(device))
        return Response(progress_output(state))

    @extend_schema(parameters=[DEVICE_PARAMETER], responses={200: ProgressOutput})
    def delete(self, request: Request, track_id: int) -> Response:
        """Mark unplayed: back to the start, not completed."""
        device = _parse(DeviceQueryInput, request.query_params).get("device_id")
        state = services.progress_reset(user=signed_in(request), track_id=track_id, **_device(device))
        return Response(progress_output(state))


class SessionListView(generics.ListAPIView):
    """The open sessions of the user: what plays on each device."""

    serializer_class = SessionOutput

    def get_queryset(self) -> QuerySet[PlaybackSession]:
        return selectors.session_open_list(user=self.request.user)

    @extend_schema(
        request=SessionStartInput,
        responses={201: SessionStartOutput, 404: OpenApiResponse(ErrorOutput, description="No such track.")},
    )
    def post(self, request: Request) -> Response:
        data = _parse(SessionStartInput, request.data)
        started = services.session_start(
            user=signed_in(request),
            track_id=data["track"],
            device_id=data["device_id"],
            codecs=data.get("codecs"),
            max_bitrate_kbps=data.get("max_bitrate"),
        )
        return Response(SessionStartOutput(started).data, status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses=SessionOutput)
    def get(self, request: Request, session_id: int) -> Response:
        return Response(SessionOutput(selectors.session_get(user=request.user, session_id=session_id)).data)

    @extend_schema(request=SessionHeartbeatInput, responses={200: SessionOutput, 409: ProgressStaleOutput})
    def patch(self, request: Request, session_id: int) -> Response:
        """Heartbeat: the position (stored like a progress PUT) and the state."""
        session = selectors.session_get(user=request.user, session_id=session_id)
        data = _parse(SessionHeartbeatInput, request.data, counts_as_progress=True)
        session, outcome = services.session_heartbeat(session=session, **data)
        if outcome.stale:
            return Response(_stale_body(outcome.state), status=status.HTTP_409_CONFLICT)
        return Response(SessionOutput(session).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, session_id: int) -> Response:
        services.session_end(session=selectors.session_get(user=request.user, session_id=session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrackBookmarksView(generics.ListAPIView):
    serializer_class = BookmarkOutput

    def get_queryset(self) -> QuerySet[Bookmark]:
        return selectors.bookmark_list(user=self.request.user, track_id=self.kwargs["track_id"])

    @extend_schema(request=BookmarkInput, responses={201: BookmarkOutput})
    def post(self, request: Request, track_id: int) -> Response:
        data = _parse(BookmarkInput, request.data)
        bookmark = services.bookmark_create(user=signed_in(request), track_id=track_id, **data)
        return Response(BookmarkOutput(bookmark).data, status=status.HTTP_201_CREATED)


class BookmarkDetailView(APIView):
    @extend_schema(request=BookmarkUpdateInput, responses=BookmarkOutput)
    def patch(self, request: Request, bookmark_id: int) -> Response:
        bookmark = selectors.bookmark_get(user=request.user, bookmark_id=bookmark_id)
        data = _parse(BookmarkUpdateInput, request.data)
        return Response(BookmarkOutput(services.bookmark_update(bookmark=bookmark, **data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, bookmark_id: int) -> Response:
        services.bookmark_delete(bookmark=selectors.bookmark_get(user=request.user, bookmark_id=bookmark_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueueView(APIView):
    @extend_schema(parameters=[DEVICE_PARAMETER], responses=QueueOutput)
    def get(self, request: Request) -> Response:
        """The device's saved queue; without `device_id`, the one saved last on any device. Nothing saved
        is an empty queue (200, no tracks, `updated_at` null), not a 404."""
        device = _parse(DeviceQueryInput, request.query_params).get("device_id")
        return Response(QueueOutput(selectors.play_queue_get(user=request.user, device_id=device)).data)

    @extend_schema(parameters=[DEVICE_REQUIRED_PARAMETER], request=QueueInput, responses=QueueOutput)
    def put(self, request: Request) -> Response:
        device = _parse(DeviceQueryInput, request.query_params).get("device_id")
        if not device:
            raise exceptions.ValidationError({"device_id": ["This field is required."]})
        data = _parse(QueueInput, request.data)
        services.play_queue_save(user=signed_in(request), device_id=device, **data)
        return Response(QueueOutput(selectors.play_queue_get(user=request.user, device_id=device)).data)


class ListenListView(generics.ListAPIView):
    """Listening history, newest first."""

    serializer_class = ListenOutput

    def get_queryset(self) -> MergedNewestFirst[Listen]:  # type: ignore[override]
        # Not a QuerySet, but all that ListAPIView's pagination uses of one: count() and a slice.
        return selectors.listen_list(user=self.request.user)
