from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.library.serializers import ChapterOutput, TrackListOutput
from apps.ops.errors import ErrorDetailOutput
from apps.playback.models import DEVICE_ID_MAX_LENGTH, MAX_QUEUE_TRACKS, PlaybackState, RepeatMode
from apps.playback.progress.rules import EPOCH
from apps.streaming.serializers import CodecField, client_codecs

BIGINT_MAX = 2**63 - 1
# Client times before this are a device whose clock was never set: refused rather than stored as stale.
EARLIEST_CLIENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: "12", 12.0, 12.5, true and NaN are refused (DRF's own field takes
    numeric strings and whole floats)."""

    default_error_messages = {"invalid": "A JSON integer is required."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]})
class ClientTimeField(serializers.Field):
    """RFC 3339 with a time zone (`2025-05-01T12:00:00.250Z`) or an integer of epoch milliseconds."""

    default_error_messages = {
        "invalid": "Expected an RFC 3339 time with a time zone or integer epoch milliseconds.",
        "range": "Expected a time after 2000-01-01.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if isinstance(data, bool):
            self.fail("invalid")
        moment: datetime | None = None
        if isinstance(data, int):
            try:
                moment = EPOCH + timedelta(milliseconds=data)
            except OverflowError:
                self.fail("range")
        elif isinstance(data, str) and len(data) <= 64:
            try:
                moment = parse_datetime(data.strip())
            except ValueError:
                moment = None
        if moment is None or moment.tzinfo is None:
            self.fail("invalid")
        try:
            if moment < EARLIEST_CLIENT_TIME:
                self.fail("range")
            return moment.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-23:59 is past datetime.max in UTC
            self.fail("range")

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class DeviceIdField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=DEVICE_ID_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not value.isprintable():
            raise serializers.ValidationError("Only printable characters.")
        return value


class ProgressInput(serializers.Serializer):
    position_ms = StrictIntegerField(min_value=0)
    device_id = DeviceIdField()
    client_updated_at = ClientTimeField(required=False)
    state = serializers.ChoiceField(choices=PlaybackState.choices, required=False)


class ProgressBatchItemInput(ProgressInput):
    track = StrictIntegerField(min_value=1)


class ProgressBatchInput(serializers.Serializer):
    updates = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=1000)


class DeviceQueryInput(serializers.Serializer):
    device_id = DeviceIdField(required=False)


class ProgressListState(enum.StrEnum):
    """Which progress rows a list asks for."""

    IN_PROGRESS = "in_progress"  # started and not completed ("continue listening"), newest first
    ALL = "all"


class ProgressListInput(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[value.value for value in ProgressListState], required=False, default=ProgressListState.ALL.value
    )
    since = serializers.CharField(required=False, max_length=64)

    def validate_since(self, value: str) -> datetime:
        field = ClientTimeField()
        # isascii: "²".isdigit() too, and int() refuses it.
        epoch_ms = value.isascii() and value.isdigit() and len(value) < 17
        return field.run_validation(int(value) if epoch_ms else value)


class ProgressOutput(serializers.Serializer):
    """The shape of a progress state in every answer; `store.progress_output` writes it out by hand for
    speed (a test keeps the two identical)."""

    track_id = serializers.IntegerField()
    position_ms = serializers.IntegerField()
    duration_ms = serializers.IntegerField()
    progress = serializers.FloatField()
    completed = serializers.BooleanField()
    play_count = serializers.IntegerField()
    device_id = serializers.CharField(allow_null=True)
    state = serializers.CharField()
    client_updated_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ProgressRowOutput(serializers.Serializer):
    """A list row: the progress and the track it is in (a ProgressRow)."""

    track = TrackListOutput()
    progress = ProgressOutput(source="state")


class ProgressSyncOutput(serializers.Serializer):
    """`?since=`: every change after it, unpaginated."""

    results = ProgressRowOutput(many=True)
    next_since = serializers.DateTimeField()


class ProgressPageOutput(serializers.Serializer):
    """Without `since`: one page of rows."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ProgressRowOutput(many=True)


class ProgressStaleOutput(serializers.Serializer):
    """409: a newer update is stored; `current` is the stored state."""

    error = ErrorDetailOutput()
    current = ProgressOutput()


class ProgressBatchResultOutput(serializers.Serializer):
    """One update's outcome: `progress` (200), `error` and `current` (409), or `error` (400, 404)."""

    track = serializers.IntegerField(allow_null=True)
    status = serializers.IntegerField()
    progress = ProgressOutput(required=False)
    error = ErrorDetailOutput(required=False)
    current = ProgressOutput(required=False)


class ProgressBatchOutput(serializers.Serializer):
    results = ProgressBatchResultOutput(many=True, help_text="One per update, in order.")


class SessionStartInput(serializers.Serializer):
    track = StrictIntegerField(min_value=1)
    device_id = DeviceIdField()
    codecs = serializers.ListField(child=CodecField(max_length=32), required=False, allow_null=True, max_length=20)
    # The same limits as the stream decision (StreamInput), whose URL the session hands out.
    max_bitrate = StrictIntegerField(min_value=16, max_value=100_000, required=False, allow_null=True)

    def validate_codecs(self, value: list[str] | None) -> list[str] | None:
        return None if value is None else client_codecs(value)


class SessionHeartbeatInput(serializers.Serializer):
    position_ms = StrictIntegerField(min_value=0)
    state = serializers.ChoiceField(choices=PlaybackState.choices)
    client_updated_at = ClientTimeField(required=False)


class SessionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    track = TrackListOutput()
    device_id = serializers.CharField()
    state = serializers.CharField()
    position_ms = serializers.IntegerField()
    listened_ms = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class SessionStartOutput(serializers.Serializer):
    id = serializers.IntegerField(source="session.id")
    resume_position_ms = serializers.IntegerField(allow_null=True)
    stream = serializers.DictField()
    chapters = ChapterOutput(many=True)


class BookmarkInput(serializers.Serializer):
    position_ms = StrictIntegerField(min_value=0)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class BookmarkUpdateInput(serializers.Serializer):
    position_ms = StrictIntegerField(min_value=0, required=False)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class BookmarkOutput(serializers.Serializer):
    id = serializers.IntegerField()
    track_id = serializers.IntegerField()
    position_ms = serializers.IntegerField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class QueueInput(serializers.Serializer):
    track_ids = serializers.ListField(child=StrictIntegerField(min_value=1), max_length=MAX_QUEUE_TRACKS)
    current_index = StrictIntegerField(min_value=0, required=False, default=0)
    position_ms = StrictIntegerField(min_value=0, required=False, default=0)
    shuffle = serializers.BooleanField(required=False, default=False)
    repeat = serializers.ChoiceField(choices=RepeatMode.choices, required=False, default=RepeatMode.OFF)


class QueueOutput(serializers.Serializer):
    """A saved queue, or the empty one of a device (or user) that never saved any: no tracks, `updated_at`
    null, and `device_id` null when none was asked for."""

    device_id = serializers.CharField(source="queue.device_id", allow_null=True)
    track_ids = serializers.ListField(child=serializers.IntegerField())
    current_index = serializers.IntegerField()
    position_ms = serializers.IntegerField(source="queue.position_ms")
    shuffle = serializers.BooleanField(source="queue.shuffle")
    repeat = serializers.CharField(source="queue.repeat")
    updated_at = serializers.DateTimeField(source="queue.updated_at", allow_null=True)


class ListenOutput(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null while the listen is still in the write buffer.")
    track = TrackListOutput()
    play_number = serializers.IntegerField()
    device_id = serializers.CharField()
    position_ms = serializers.IntegerField()
    listened_at = serializers.DateTimeField()
