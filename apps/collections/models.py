"""Favourites, ratings, playlists and smart playlists: what a user collects out of the library.

A user's favourite and rating of one item live in one row (a *mark*): the library's lists read both with one
join, and a row whose favourite and rating are both cleared is deleted (no row = neither).

Artists have no table of their own: they are the names in Track.artists / album_artists (ArrayFields). An
artist mark is keyed by that exact name, the same key the artist list (`GET /artists`) groups by, so a star
follows the artist across libraries and rescans, and needs no artist row to exist.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.library.models import Album, Track

RATING_MIN = 1
RATING_MAX = 5

_RATING_VALID = Q(rating__isnull=True) | Q(rating__gte=RATING_MIN, rating__lte=RATING_MAX)
_NOT_EMPTY = Q(favourite_at__isnull=False) | Q(rating__isnull=False)


class Mark(models.Model):
    favourite_at = models.DateTimeField(null=True, blank=True, help_text="When it was starred; empty: not starred.")
    rating = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1–5; empty: not rated.")

    class Meta:
        abstract = True


class TrackMark(Mark):
    # No index of its own: the unique (user, track) index leads with user_id.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    # related_name "marks": apps.library (a lower layer) annotates its lists through it without importing us.
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="marks")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "track"], name="trackmark_unique"),
            models.CheckConstraint(condition=_RATING_VALID, name="trackmark_rating_valid"),
            models.CheckConstraint(condition=_NOT_EMPTY, name="trackmark_not_empty"),
        ]
        indexes = [models.Index(fields=["user", "-favourite_at"], name="trackmark_user_favourite")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ track {self.track_id}"


class AlbumMark(Mark):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="marks")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "album"], name="albummark_unique"),
            models.CheckConstraint(condition=_RATING_VALID, name="albummark_rating_valid"),
            models.CheckConstraint(condition=_NOT_EMPTY, name="albummark_not_empty"),
        ]
        indexes = [models.Index(fields=["user", "-favourite_at"], name="albummark_user_favourite")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ album {self.album_id}"


class ArtistMark(Mark):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The exact name as tagged (see the module's docstring).
    name = models.CharField(max_length=500)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="artistmark_unique"),
            models.CheckConstraint(condition=_RATING_VALID, name="artistmark_rating_valid"),
            models.CheckConstraint(condition=_NOT_EMPTY, name="artistmark_not_empty"),
        ]
        indexes = [models.Index(fields=["user", "-favourite_at"], name="artistmark_user_favourite")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ {self.name}"


# Bounds (README, Playlists): entries added, removed or moved in one call, and entries in one playlist.
PLAYLIST_MAX_ENTRIES_PER_CALL = 500
PLAYLIST_MAX_ENTRIES = 5000


class Playlist(models.Model):
    """A user's ordered list of tracks. `version` goes up with every change (the `ETag`; an edit sent with a
    stale `If-Match` is refused with 409); `track_count` and `duration_ms` are kept by the services that
    change the entries, so a list of playlists never counts entries."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playlists")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    public = models.BooleanField(
        default=False, help_text="Listed for every user (each sees only the entries of tracks they may see)."
    )
    version = models.PositiveIntegerField(default=1)
    track_count = models.PositiveIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["owner", "name"], name="playlist_owner_name"),
            models.Index(fields=["name"], condition=Q(public=True), name="playlist_public_name"),
        ]

    def __str__(self) -> str:
        return self.name


class PlaylistEntry(models.Model):
    """One place in a playlist (a track may have several). Positions run 0…n-1 without gaps; the services
    renumber them in one statement, under the deferred unique constraint."""

    playlist = models.ForeignKey(Playlist, on_delete=models.CASCADE, related_name="entries", db_index=False)
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="playlist_entries")
    position = models.PositiveIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["playlist", "position"]
        verbose_name_plural = "playlist entries"
        constraints = [
            models.UniqueConstraint(
                fields=["playlist", "position"],
                name="playlistentry_unique_position",
                deferrable=models.Deferrable.DEFERRED,
            )
        ]

    def __str__(self) -> str:
        return f"{self.playlist_id}[{self.position}] = track {self.track_id}"


class SmartPlaylist(models.Model):
    """A playlist that builds itself: `rules` (apps.collections.smart_rules, checked by the services before
    they are stored) are compiled to one query each time it is read."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="smart_playlists")
    name = models.CharField(max_length=200)
    rules = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "name"], name="smartplaylist_owner_name")]

    def __str__(self) -> str:
        return self.name
