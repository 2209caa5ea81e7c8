from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.podcasts.models import FeedEpisode, Subscription
from apps.podcasts.services.downloads import episodes_download_request
from apps.podcasts.services.subscriptions import subscription_refresh_request


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__", "library", "auto_download", "auto_download_paused", "failures", "last_error", "last_success_at",
        "next_poll_at",
    ]  # fmt: skip
    list_filter = ["library", "auto_download", "auto_download_paused"]
    list_select_related = ["library"]
    search_fields = ["title", "feed_url", "author"]
    readonly_fields = [
        "folder_name", "title", "author", "description", "image_url", "categories", "explicit", "language", "link",
        "podcast_guid", "blocked", "complete", "etag", "last_modified", "content_sha256", "last_polled_at",
        "last_success_at", "failures", "last_error", "image_stored_url", "image_error", "created_by",
    ]  # fmt: skip
    actions = ["refresh_now"]

    @admin.action(description="Refresh now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            subscription_refresh_request(subscription=subscription, manual=True)
        self.message_user(request, f"{queryset.count()} refreshes queued.", messages.SUCCESS)


@admin.register(FeedEpisode)
class FeedEpisodeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "subscription", "published_at", "state", "in_feed", "download_error", "track"]
    list_filter = ["state", "in_feed", "subscription"]
    list_select_related = ["subscription"]
    raw_id_fields = ["track", "subscription"]
    search_fields = ["title", "guid"]
    readonly_fields = ["key", "first_seen_at", "downloaded_at", "removed_at", "download_attempts", "file_path"]
    actions = ["download_now"]

    @admin.action(description="Download now")
    def download_now(self, request: HttpRequest, queryset: QuerySet[FeedEpisode]) -> None:
        queued = episodes_download_request(episode_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{len(queued)} downloads queued.", messages.SUCCESS)
