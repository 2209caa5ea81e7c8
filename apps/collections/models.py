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
