from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import CharField, F, Func, Q, QuerySet, Value
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.utils import extend_schema_field

from apps.library.models import Album, Library, LibraryKind, Track
from apps.library.selectors import EPISODE_NEWEST_FIRST


@extend_schema_field({"type": "integer", "minimum": 1})
class IdFilter(django_filters.NumberFilter):
    """A whole, positive id (NumberFilter alone would take 1.5)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


class ArrayToString(Func):
    function = "array_to_string"
    output_field = CharField()


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ties broken by id: pages of a list ordered by duration or year neither repeat nor skip rows."""

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        qs = super().filter(qs, value)
        if value in EMPTY_VALUES:
            return qs
        return qs.order_by(*qs.query.order_by, "pk")


class TrackFilter(django_filters.FilterSet):
    library = IdFilter(field_name="library_id")
    album = IdFilter(field_name="album_id")
    artist = django_filters.CharFilter(
        method="filter_artist", help_text="Tracks whose artists or album artists include this name."
    )
    genre = django_filters.CharFilter(method="filter_genre", help_text="Tracks whose genres include this one.")
    q = django_filters.CharFilter(method="filter_q", help_text="Case-insensitive search in title, artists, album.")
    ordering = StableOrderingFilter(
        fields=(
            ("title", "title"),
            ("created_at", "added"),
            ("duration_ms", "duration"),
            ("year", "year"),
            ("updated_at", "updated"),
            ("published_at", "published"),
        ),
        help_text=(
            "title, added, duration, year, updated or published; prefix with - for descending. Without it, "
            "the episodes of a podcast library or show come newest first."
        ),
    )

    class Meta:
        model = Track
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[Track]) -> QuerySet[Track]:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if not data.get("ordering") and _podcasts(library_id=data.get("library"), album_id=data.get("album")):
            return queryset.order_by(*EPISODE_NEWEST_FIRST)
        return queryset

    def filter_artist(self, queryset: QuerySet[Track], name: str, value: str) -> QuerySet[Track]:
        # GIN indexes on both
        return queryset.filter(Q(artists__contains=[value]) | Q(album_artists__contains=[value]))

    def filter_genre(self, queryset: QuerySet[Track], name: str, value: str) -> QuerySet[Track]:
        return queryset.filter(genres__contains=[value])

    def filter_q(self, queryset: QuerySet[Track], name: str, value: str) -> QuerySet[Track]:
        return queryset.annotate(artists_text=ArrayToString(F("artists"), Value(" "))).filter(
            Q(title__icontains=value) | Q(artists_text__icontains=value) | Q(album__title__icontains=value)
        )


class AlbumFilter(django_filters.FilterSet):
    library = IdFilter(field_name="library_id")
    artist = django_filters.CharFilter(method="filter_artist")
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains")
    ordering = StableOrderingFilter(
        fields=(("title", "title"), ("year", "year"), ("created_at", "added")),
    )

    class Meta:
        model = Album
        fields: list[str] = []

    def filter_artist(self, queryset: QuerySet[Album], name: str, value: str) -> QuerySet[Album]:
        return queryset.filter(
            Q(artists__contains=[value]) | Q(album_artists__contains=[value]) | Q(album_artist=value)
        )


def _podcasts(*, library_id: int | None, album_id: int | None) -> bool:
    """Whether the list is one podcast library's or one show's (then episodes come newest first). Only
    the order depends on it: the rows are already scoped to what the user may see."""
    if library_id is not None:
        return Library.objects.filter(pk=library_id, kind=LibraryKind.PODCAST).exists()
    if album_id is not None:
        return Album.objects.filter(pk=album_id, library__kind=LibraryKind.PODCAST).exists()
    return False
