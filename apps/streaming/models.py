from __future__ import annotations

from django.db import models

from apps.library.models import Track
from apps.streaming.storage import RenditionStorage


class RenditionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


class Rendition(models.Model):
    """One profile of a track's HLS ladder, under one rendition key (see profiles.Ladder.rendition_key).

    The files live in its folder (storage.RenditionStorage); a row is `ready` only after
    its folder was published by an atomic rename and measured.
    """

    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="renditions")
    profile = models.CharField(max_length=32)
    rendition_key = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=RenditionStatus.choices, default=RenditionStatus.PENDING)
    segment_format = models.CharField(max_length=8)
    codecs = models.CharField(max_length=64, blank=True, help_text="CODECS attribute (RFC 6381).")
    error = models.TextField(blank=True, help_text="The end of ffmpeg's output when it failed.")
    attempts = models.PositiveSmallIntegerField(default=0)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    peak_bitrate_bps = models.PositiveIntegerField(null=True, blank=True)
    average_bitrate_bps = models.PositiveIntegerField(null=True, blank=True)
    segment_count = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    transcode_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Wall time of the ffmpeg run.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["track", "rendition_key", "profile"]
        constraints = [
            models.UniqueConstraint(fields=["track", "rendition_key", "profile"], name="rendition_unique_profile"),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="rendition_status"),
        ]

    def __str__(self) -> str:
        return f"{self.track_id}/{self.rendition_key}/{self.profile} ({self.status})"

    @property
    def folder_name(self) -> str:
        """The profile's folder under RENDITIONS_ROOT (storage.RenditionStorage owns the layout)."""
        return RenditionStorage.relative_path(self.track_id, self.rendition_key, self.profile)
