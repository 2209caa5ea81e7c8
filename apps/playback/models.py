from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from apps.library.models import Track

MAX_QUEUE_TRACKS = 10_000
DEVICE_ID_MAX_LENGTH = 64


class PlaybackState(models.TextChoices):
    PLAYING = "playing", "Playing"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class RepeatMode(models.TextChoices):
    OFF = "off", "Off"
    ONE = "one", "Repeat the track"
    ALL = "all", "Repeat the queue"


class PlaybackProgress(models.Model):
    """Where a user is in a track, and how often they finished it.

    Written by `apps.playback.services` only: straight (PROGRESS_WRITE_MODE=direct) or by the flush of the
    Redis buffer. `updated_at` is the server time of the accepted update, not of the flush, so `?since=`
    sync sees a change at the time it was made.
    """

    # No index of its own: the unique (user, track) index leads with user_id.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playback_progress", db_index=False
    )
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="playback_progress")
    position_ms = models.BigIntegerField()
    duration_ms = models.BigIntegerField(help_text="The track's duration when the position was stored.")
    completed = models.BooleanField(default=False, help_text="The current play-through reached the threshold.")
    play_count = models.PositiveIntegerField(default=0)
    device_id = models.CharField(max_length=DEVICE_ID_MAX_LENGTH, help_text="The device of the last update.")
    state = models.CharField(max_length=16, choices=PlaybackState.choices, default=PlaybackState.STOPPED)
    client_updated_at = models.DateTimeField(help_text="When the device says the update happened; newest wins.")
    updated_at = models.DateTimeField(help_text="When the server accepted the update.")

    class Meta:
        verbose_name = "playback progress"
        verbose_name_plural = "playback progress"
        constraints = [
            models.UniqueConstraint(fields=["user", "track"], name="progress_unique_per_user_track"),
            models.CheckConstraint(condition=Q(position_ms__gte=0), name="progress_position_not_negative"),
            models.CheckConstraint(condition=Q(state__in=PlaybackState.values), name="progress_state_valid"),
        ]
        indexes = [
            # `?since=` sync and "continue listening" (newest first) of one user.
            models.Index(fields=["user", "-updated_at"], name="progress_user_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.track_id}: {self.position_ms} ms"


class Listen(models.Model):
    """One completed play-through (a scrobble). `play_number` is the track's play count after it.

    (user, track, play_number) is unique: the buffer flush inserts listens with ON CONFLICT DO NOTHING,
    so a flush retried after a crash never counts one twice.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="listens", db_index=False)
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="listens")
    play_number = models.PositiveIntegerField()
    device_id = models.CharField(max_length=DEVICE_ID_MAX_LENGTH)
    position_ms = models.BigIntegerField(help_text="Where the play-through was when it counted.")
    listened_at = models.DateTimeField(help_text="The device's time of the update that completed it.")

    class Meta:
        ordering = ["-listened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "track", "play_number"], name="listen_unique_play"),
        ]
        indexes = [models.Index(fields=["user", "-listened_at"], name="listen_user_time")]

    def __str__(self) -> str:
        return f"{self.user_id} played {self.track_id} (#{self.play_number})"


class PlaybackSession(models.Model):
    """A device playing a track now. Heartbeats (PATCH) move the progress and add up listened time."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playback_sessions", db_index=False
    )
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="playback_sessions")
    device_id = models.CharField(max_length=DEVICE_ID_MAX_LENGTH)
    state = models.CharField(max_length=16, choices=PlaybackState.choices, default=PlaybackState.PLAYING)
    position_ms = models.BigIntegerField(default=0)
    listened_ms = models.BigIntegerField(default=0, help_text="Time actually played in this session.")
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            # One open session per device: starting another one ends the previous.
            models.UniqueConstraint(
                fields=["user", "device_id"], condition=Q(ended_at__isnull=True), name="session_one_open_per_device"
            ),
            models.CheckConstraint(condition=Q(state__in=PlaybackState.values), name="session_state_valid"),
            models.CheckConstraint(
                condition=Q(position_ms__gte=0) & Q(listened_ms__gte=0), name="session_counters_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-last_seen_at"], name="session_user_seen"),
            models.Index(fields=["last_seen_at"], condition=Q(ended_at__isnull=True), name="session_open_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.device_id}: {self.track_id}"


class Bookmark(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bookmarks", db_index=False
    )
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="bookmarks")
    position_ms = models.BigIntegerField()
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position_ms", "id"]
        constraints = [models.CheckConstraint(condition=Q(position_ms__gte=0), name="bookmark_position_not_negative")]
        indexes = [models.Index(fields=["user", "track", "position_ms"], name="bookmark_user_track")]

    def __str__(self) -> str:
        return f"{self.track_id} @ {self.position_ms} ms"


class PlayQueue(models.Model):
    """A device's play queue, saved and restored like Subsonic's savePlayQueue / getPlayQueue."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="play_queues", db_index=False
    )
    device_id = models.CharField(max_length=DEVICE_ID_MAX_LENGTH)
    # Plain ids, not a many-to-many: a queue is saved whole on every change, up to 10 000 entries, and a
    # track deleted since is simply skipped when the queue is read.
    track_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    current_index = models.PositiveIntegerField(default=0)
    position_ms = models.BigIntegerField(default=0)
    shuffle = models.BooleanField(default=False)
    repeat = models.CharField(max_length=8, choices=RepeatMode.choices, default=RepeatMode.OFF)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device_id"], name="queue_unique_per_device"),
            models.CheckConstraint(condition=Q(track_ids__len__lte=MAX_QUEUE_TRACKS), name="queue_max_tracks"),
            models.CheckConstraint(condition=Q(position_ms__gte=0), name="queue_position_not_negative"),
            models.CheckConstraint(condition=Q(repeat__in=RepeatMode.values), name="queue_repeat_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.device_id}: {len(self.track_ids)} tracks"
