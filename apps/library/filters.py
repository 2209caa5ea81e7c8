from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.utils import extend_schema_field

from apps.library.models import Album, Library, LibraryKind, Track
from apps.library.search import (
    SEARCH_ORDER,
    SEARCH_QUERY_MAX_CHARS,
    SEARCH_QUERY_MIN_CHARS,
    TRACK_SEARCH_ORDER,
    SearchTerm,
    SearchTermInvalid,
    search_term,
)
from apps.library.selectors import EPISODE_NEWEST_FIRST, album_matching, track_matching


@extend_schema_field({"type": "integer", "minimum": 1})
class IdFilter(django_filters.NumberFilter):
    """A whole, positive id (NumberFilter alone would take 1.5)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


class SearchTermField(forms.CharField):
    """A search text checked by apps.library.search (length, NUL), cleaned to a SearchTerm."""

    def clean(self, value: Any) -> SearchTerm | None:
        value = super().clean(value)
        if value in EMPTY_VALUES:
            return None
        try:
            return search_term(value)
        except SearchTermInvalid as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


@extend_schema_field({"type": "string", "minLength": SEARCH_QUERY_MIN_CHARS, "maxLength": SEARCH_QUERY_MAX_CHARS})
class SearchFilter(django_filters.CharFilter):
    """`q=`: the search matcher (accent-insensitive, typo-tolerant); without an ordering, best matches first."""

    field_class = SearchTermField

    def filter(self, qs: QuerySet, value: SearchTerm | None) -> QuerySet:
        if value is None:
            return qs
        if qs.model is Track:
            return track_matching(qs, value).order_by(*TRACK_SEARCH_ORDER)
        return album_matching(qs, value).order_by(*SEARCH_ORDER)


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ties broken by id: pages of a list ordered by duration or year neither repeat nor skip rows."""

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        qs = super().filter(qs, value)
        if value in EMPTY_VALUES:
            return qs
        return qs.order_by(*qs.query.order_by, "pk")


class MarkFilters(django_filters.FilterSet):
    """Filters and orders on the caller's marks, the `favourite_at` and `rating` that selectors.with_marks
    annotates (unmarked rows last in either direction: "-rating" lists the best rated first)."""

    favourite = django_filters.BooleanFilter(
        field_name="favourite_at", lookup_expr="isnull", exclude=True, help_text="Only starred (true) or not."
    )
    rating_min = django_filters.NumberFilter(
        field_name="rating", lookup_expr="gte", min_value=1, max_value=5, help_text="Rated at least this (1–5)."
    )
    MARK_ORDERINGS = (("favourite_at", "favourited"), ("rating", "rating"))


class MarkOrderingFilter(StableOrderingFilter):
    def get_ordering_value(self, param: str) -> Any:
        value = super().get_ordering_value(param)
        field = value.lstrip("-")
        if field in ("favourite_at", "rating"):
            return F(field).desc(nulls_last=True) if value.startswith("-") else F(field).asc(nulls_last=True)
        return value


class TrackFilter(MarkFilters):
    library = IdFilter(field_name="library_id")
    album = IdFilter(field_name="album_id")
    artist = django_filters.CharFilter(
        method="filter_artist", help_text="Tracks whose artists or album artists include this name."
    )
    genre = django_filters.CharFilter(method="filter_genre", help_text="Tracks whose genres include this one.")
    q = SearchFilter(
        help_text="Search title, artists and album title: accents and case ignored, typos forgiven, best first."
    )
    ordering = MarkOrderingFilter(
        fields=(
            ("title", "title"),
            ("created_at", "added"),
            ("duration_ms", "duration"),
            ("year", "year"),
            ("updated_at", "updated"),
            ("published_at", "published"),
            *MarkFilters.MARK_ORDERINGS,
        ),
        help_text=(
            "title, added, duration, year, updated, published, favourited or rating; prefix with - for "
            "descending. Without it, the episodes of a podcast library or show come newest first."
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


class AlbumFilter(MarkFilters):
    library = IdFilter(field_name="library_id")
    artist = django_filters.CharFilter(method="filter_artist")
    q = SearchFilter(help_text="Search the title: accents and case ignored, typos forgiven, best first.")
    ordering = MarkOrderingFilter(
        fields=(("title", "title"), ("year", "year"), ("created_at", "added"), *MarkFilters.MARK_ORDERINGS),
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
