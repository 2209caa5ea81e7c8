from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from apps.library.admin import TrackAdmin
from apps.library.models import Track
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.services import renditions_request, renditions_retry

READONLY = (
    "track",
    "profile",
    "rendition_key",
    "status",
    "segment_format",
    "codecs",
    "size_bytes",
    "peak_bitrate_bps",
    "average_bitrate_bps",
    "segment_count",
    "duration_ms",
    "attempts",
    "started_at",
    "finished_at",
    "transcode_ms",
    "error",
    "created_at",
    "updated_at",
)


def _kbps(bps: int | None) -> str:
    return f"{bps / 1000:.0f} kbps" if bps else "–"


class RenditionInline(admin.TabularInline):
    model = Rendition
    extra = 0
    can_delete = False
    fields = ("profile", "status", "size", "peak", "average", "segment_count", "rendition_key", "error_tail")
    readonly_fields = fields
    ordering = ("-created_at", "profile")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="size")
    def size(self, rendition: Rendition) -> str:
        return filesizeformat(rendition.size_bytes) if rendition.size_bytes else "–"

    @admin.display(description="peak")
    def peak(self, rendition: Rendition) -> str:
        return _kbps(rendition.peak_bitrate_bps)

    @admin.display(description="average")
    def average(self, rendition: Rendition) -> str:
        return _kbps(rendition.average_bitrate_bps)

    @admin.display(description="error")
    def error_tail(self, rendition: Rendition) -> str:
        error = rendition.error
        return error if len(error) <= 400 else f"{error[:100]} … {error[-300:]}"


@admin.action(description="Retry the selected renditions (their whole track)")
def retry(modeladmin: RenditionAdmin, request: HttpRequest, queryset: QuerySet[Rendition]) -> None:
    failed = queryset.filter(status=RenditionStatus.FAILED)
    if not failed.exists():
        modeladmin.message_user(request, "Only failed renditions can be retried.", messages.WARNING)
        return
    queued = renditions_retry(rendition_ids=failed.values_list("pk", flat=True))
    modeladmin.message_user(request, f"{queued} track(s) queued for transcoding.", messages.SUCCESS)


@admin.register(Rendition)
class RenditionAdmin(admin.ModelAdmin):
    list_display = ("track", "profile", "status", "size", "average", "attempts", "finished_at")
    list_filter = ("status", "profile", "segment_format")
    search_fields = ("track__title", "rendition_key", "error")
    list_select_related = ("track",)
    raw_id_fields = ("track",)
    readonly_fields = READONLY
    actions = [retry]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="size", ordering="size_bytes")
    def size(self, rendition: Rendition) -> str:
        return filesizeformat(rendition.size_bytes) if rendition.size_bytes else "–"

    @admin.display(description="average", ordering="average_bitrate_bps")
    def average(self, rendition: Rendition) -> str:
        return _kbps(rendition.average_bitrate_bps)


@admin.action(description="Transcode the selected tracks now")
def transcode_now(modeladmin: TrackAdmin, request: HttpRequest, queryset: QuerySet[Track]) -> None:
    queued = renditions_request(track_ids=queryset.values_list("pk", flat=True), interactive=True, retry_failed=True)
    modeladmin.message_user(
        request,
        f"{queued} track(s) queued; the others are ready already.",
        messages.SUCCESS if queued else messages.INFO,
    )


# The library's Track admin, with the renditions of each track (the library app knows nothing of streaming).
admin.site.unregister(Track)


@admin.register(Track)
class TrackWithRenditionsAdmin(TrackAdmin):
    inlines = [*TrackAdmin.inlines, RenditionInline]
    # Read from the class, as Django does; django-stubs declare `actions` per instance.
    actions = [*(TrackAdmin.actions or []), transcode_now]  # type: ignore[misc]
