"""Read-only views of playback data, per user: support answers "why is my position wrong?" from here."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from apps.playback.models import Listen, PlaybackProgress, PlaybackSession


class _ReadOnlyAdmin(admin.ModelAdmin):
    search_fields = ("user__username", "track__title", "device_id")
    raw_id_fields = ("user", "track")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(PlaybackProgress)
class PlaybackProgressAdmin(_ReadOnlyAdmin):
    list_display = ("user", "track", "position_ms", "duration_ms", "completed", "play_count", "device_id", "updated_at")
    list_filter = ("completed", "state")
    list_select_related = ("user", "track")
    date_hierarchy = "updated_at"


@admin.register(Listen)
class ListenAdmin(_ReadOnlyAdmin):
    list_display = ("user", "track", "play_number", "device_id", "listened_at")
    list_select_related = ("user", "track")
    date_hierarchy = "listened_at"


@admin.register(PlaybackSession)
class PlaybackSessionAdmin(_ReadOnlyAdmin):
    list_display = ("user", "track", "device_id", "state", "position_ms", "listened_ms", "last_seen_at", "ended_at")
    list_filter = ("state",)
    list_select_related = ("user", "track")
    date_hierarchy = "last_seen_at"
