"""Podcast subscriptions and the episodes their feeds list.

A Subscription belongs to one podcast library: its downloaded episodes are files under the library's first
folder (`<root>/<show folder>/<date> <title>.<ext>`) and become Tracks through a targeted scan of that one
file, so artwork, transcoding, progress and listens apply unchanged. A FeedEpisode exists for every item
the feed ever listed (an item gone from the feed is kept, `in_feed=False`); it links to its Track once
downloaded, and keeps the link after retention removed the file (the track is then `missing`, its progress
and listens stay, and a new download brings the same track back).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from apps.library.models import Library, Track


class AutoDownload(models.TextChoices):
    NONE = "none", "Nothing (download by hand)"
    NEWEST = "newest", "The newest N episodes"
    SINCE_SUBSCRIBED = "since_subscribed", "Everything published since subscribing"


class Subscription(models.Model):
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="subscriptions")
    feed_url = models.URLField(max_length=2048)
    # Fixed at the first successful refresh (from the show's title): a show that renames itself keeps its
    # folder, and its tracks their paths.
    folder_name = models.CharField(max_length=200, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # The feed's metadata, as of its last successful refresh.
    title = models.CharField(max_length=500, blank=True)
    author = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    # The image URL whose bytes are the show's folder image (apps.podcasts.services.artwork), and why the
    # last new one could not be used.
    image_stored_url = models.URLField(max_length=2048, blank=True, editable=False)
    image_error = models.TextField(blank=True, editable=False)
    categories = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    explicit = models.BooleanField(default=False)
    language = models.CharField(max_length=35, blank=True)
    link = models.URLField(max_length=2048, blank=True)
    podcast_guid = models.CharField(max_length=200, blank=True)
    # itunes:block (the publisher asks directories not to list it) and itunes:complete (no new episodes).
    blocked = models.BooleanField(default=False)
    complete = models.BooleanField(default=False)

    # Polling: conditional GETs and a content hash, so an unchanged feed costs one 304 (or one hash).
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    poll_interval_minutes = models.PositiveIntegerField(default=60)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed refreshes in a row.")
    last_error = models.TextField(blank=True)
    # Set after PODCAST_PAUSE_AFTER_FAILURES failed refreshes in a row (the feed may be gone, or someone
    # else's now): nothing downloads by itself until a person refreshes it successfully or changes the policy.
    auto_download_paused = models.BooleanField(default=False)

    # Policies.
    auto_download = models.CharField(max_length=20, choices=AutoDownload.choices, default=AutoDownload.NEWEST)
    auto_download_newest = models.PositiveIntegerField(default=3, help_text="N for 'the newest N episodes'.")
    keep_newest = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keep at most this many downloaded episodes (empty: no limit)."
    )
    delete_played_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Delete an episode this many days after it was finished (empty: never)."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        # Staff manage every library's subscriptions; a user with this permission those of the podcast
        # libraries they were granted.
        permissions = [("manage_subscriptions", "Can subscribe to podcasts in libraries granted to them")]
        constraints = [
            models.UniqueConstraint(fields=["library", "feed_url"], name="subscription_feed_unique_per_library"),
            models.UniqueConstraint(
                fields=["library", "folder_name"], condition=~Q(folder_name=""), name="subscription_folder_unique"
            ),
            models.CheckConstraint(condition=Q(auto_download__in=AutoDownload.values), name="subscription_auto_valid"),
            models.CheckConstraint(condition=Q(poll_interval_minutes__gte=5), name="subscription_interval_min"),
        ]

    def __str__(self) -> str:
        return self.title or self.feed_url


class EpisodeState(models.TextChoices):
    AVAILABLE = "available", "Not downloaded"
    QUEUED = "queued", "Queued"
    DOWNLOADING = "downloading", "Downloading"
    DOWNLOADED = "downloaded", "Downloaded"
    FAILED = "failed", "Failed"
    REMOVED = "removed", "Removed"


class FeedEpisode(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="episodes")
    # Identity: the item's GUID, else a hash of its enclosure URL ("url:<sha256>"). A changed enclosure URL
    # under the same GUID is the same episode.
    key = models.CharField(max_length=600)
    guid = models.CharField(max_length=500, blank=True)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True, help_text="HTML as the feed has it; sanitised when shown.")
    link = models.URLField(max_length=2048, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    enclosure_url = models.URLField(max_length=2048)
    enclosure_type = models.CharField(max_length=100, blank=True)
    enclosure_bytes = models.BigIntegerField(null=True, blank=True, help_text="As the feed declares it.")
    duration_ms = models.BigIntegerField(null=True, blank=True, help_text="As the feed declares it.")
    season = models.PositiveIntegerField(null=True, blank=True)
    episode_number = models.PositiveIntegerField(null=True, blank=True)
    episode_type = models.CharField(max_length=20, blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    chapters_url = models.URLField(max_length=2048, blank=True)
    in_feed = models.BooleanField(default=True, help_text="False once the feed stopped listing it (kept).")
    # A hash of the fields above as the feed last gave them (apps.podcasts.feeds.episode_digest): a refresh
    # compares it and writes only the episodes that changed (one new episode in a feed of 300: one row).
    content_hash = models.CharField(max_length=32, blank=True, editable=False)

    state = models.CharField(max_length=16, choices=EpisodeState.choices, default=EpisodeState.AVAILABLE)
    download_error = models.TextField(blank=True)
    download_attempts = models.PositiveIntegerField(default=0)
    # Relative to the library's first folder; set when the file is in place.
    file_path = models.CharField(max_length=1024, blank=True)
    track = models.ForeignKey(Track, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    downloaded_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "key"], name="feedepisode_key_unique"),
            models.CheckConstraint(condition=Q(state__in=EpisodeState.values), name="feedepisode_state_valid"),
        ]
        indexes = [
            models.Index(fields=["subscription", "-published_at"], name="feedepisode_newest"),
            models.Index(fields=["track"], name="feedepisode_track"),
        ]

    def __str__(self) -> str:
        return self.title or self.enclosure_url

    @property
    def sort_time(self) -> datetime:
        return self.published_at or self.first_seen_at
