from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.podcasts.html import description_html
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription


class PolicyInput(serializers.Serializer):
    auto_download = serializers.ChoiceField(choices=AutoDownload.choices, required=False)
    auto_download_newest = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    keep_newest = serializers.IntegerField(min_value=1, max_value=100_000, required=False, allow_null=True)
    delete_played_after_days = serializers.IntegerField(min_value=0, max_value=3650, required=False, allow_null=True)
    poll_interval_minutes = serializers.IntegerField(min_value=5, max_value=7 * 24 * 60, required=False)


class SubscribeInput(PolicyInput):
    library = serializers.IntegerField(min_value=1)
    feed_url = serializers.URLField(max_length=2048)


class OpmlImportInput(PolicyInput):
    library = serializers.IntegerField(min_value=1)
    opml = serializers.CharField(max_length=5_000_000, help_text="The OPML document (XML text).")


class OpmlImportOutput(serializers.Serializer):
    created = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of the new subscriptions.")
    already = serializers.ListField(child=serializers.CharField(), help_text="Feeds the library had already.")
    refused = serializers.DictField(child=serializers.CharField(), help_text="Feed URL → why it was refused.")


class OpmlExportInput(serializers.Serializer):
    library = serializers.IntegerField(min_value=1, required=False)


class SubscriptionOutput(serializers.ModelSerializer):
    description_html = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id", "library", "feed_url", "title", "author", "description_html", "image_url", "categories",
            "explicit", "language", "link", "podcast_guid", "blocked", "complete",
            "auto_download", "auto_download_newest", "keep_newest", "delete_played_after_days",
            "poll_interval_minutes", "auto_download_paused", "failures", "last_error", "image_error", "last_polled_at",
            "last_success_at", "next_poll_at", "created_at",
        ]  # fmt: skip

    def get_description_html(self, subscription: Subscription) -> str:
        return description_html(subscription.description)


class EpisodeOutput(serializers.ModelSerializer):
    subscription = serializers.IntegerField(source="subscription_id")
    track = serializers.IntegerField(source="track_id", allow_null=True)
    # A plain string in the schema: an enum named `state` would collide with playback's (drf-spectacular
    # then renames both with a hash).
    state = serializers.CharField(help_text=", ".join(EpisodeState.values))
    description_html = serializers.SerializerMethodField()
    played = serializers.SerializerMethodField()
    in_progress = serializers.SerializerMethodField()

    class Meta:
        model = FeedEpisode
        fields = [
            "id", "subscription", "guid", "title", "description_html", "link", "published_at", "enclosure_url",
            "enclosure_type", "enclosure_bytes", "duration_ms", "season", "episode_number", "episode_type",
            "image_url", "in_feed", "state", "download_error", "track", "downloaded_at", "removed_at", "played",
            "in_progress",
        ]  # fmt: skip

    def get_description_html(self, episode: FeedEpisode) -> str:
        return description_html(episode.description)

    # context["listened"]: track id → (played, in progress) of the user (selectors.episodes_listened).
    def get_played(self, episode: FeedEpisode) -> bool:
        return self.context.get("listened", {}).get(episode.track_id, (False, False))[0]

    def get_in_progress(self, episode: FeedEpisode) -> bool:
        return self.context.get("listened", {}).get(episode.track_id, (False, False))[1]


class CountOutput(serializers.Serializer):
    count = serializers.IntegerField()


def policy(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in POLICY_NAMES if name in data}


POLICY_NAMES = (
    "auto_download",
    "auto_download_newest",
    "keep_newest",
    "delete_played_after_days",
    "poll_interval_minutes",
)
