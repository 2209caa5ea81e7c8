"""Smart playlist rules (apps.collections.smart_rules, already checked) compiled to one ORM query over the
tracks the user may see, at read time: a change in the library, a play or a star shows at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import BooleanField, F, FilteredRelation, Func, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.types import RequestUser
from apps.collections.models import TrackMark
from apps.collections.smart_rules import Condition, Group, Rules
from apps.library import selectors as library_selectors
from apps.library.models import Track
from apps.library.search import SearchNorm, SearchNormArray
from apps.playback.models import PlaybackProgress

_PROGRESS_FIELDS = {"last_played", "play_count", "in_progress"}
_ORDER_BY: dict[str, tuple[str, bool]] = {  # order → (expression name, nulls last)
    "title": ("title", False),
    "artist": ("artists", False),
    "album": ("album__title", True),
    "year": ("year", True),
    "duration": ("duration_ms", False),
    "added": ("created_at", False),
    "last_played": ("last_played", True),
    "play_count": ("play_count", False),
    "rating": ("rating", True),
    "favourited": ("favourite_at", True),
}


class _Like(Func):
    """`a LIKE b`, as a condition."""

    arg_joiner = " LIKE "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class _Equal(Func):
    arg_joiner = " = "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def _like_text(text: str) -> str:
    """The text with LIKE's wildcards and escape character taken literally (rules are never patterns)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _norm_like(normalised: Func, pattern: str) -> Q:
    # Both sides through revenge_search_norm, as apps.library.search matches: accent- and case-insensitive,
    # and the trigram / prefix indexes of migration library.0005 serve title, album title and artists.
    return Q(_Like(normalised, SearchNorm(Value(pattern))))


def _text(normalised: Func, op: str, value: str, *, names: bool) -> Q:
    like = _like_text(value)
    if op == "contains":
        return _norm_like(normalised, f"%{like}%")
    if names:  # starts_with on a list of names: a word of a name starts with it
        return _norm_like(normalised, f"{like}%") | _norm_like(normalised, f"% {like}%")
    if op == "starts_with":
        return _norm_like(normalised, f"{like}%")
    return Q(_Equal(normalised, SearchNorm(Value(value))))


class SmartTracks:
    """A smart playlist's tracks as a paginator (or any reader) takes them: `count()`, and slices of the
    ordered, limited rows with the user's marks.

    A slice is two statements: the rules choose the ids (`selection`: filtered and ordered, without the
    joins a row shows), then those ids' rows are read by primary key. In one statement the planner, which
    cannot estimate a COALESCE over a LEFT JOIN, joined the album and artwork of every matching track before
    sorting: 1.2 s for "never played" on 100 000 tracks (bench/smart.py)."""

    ordered = True  # for Django's Paginator: the order is the rules'

    def __init__(self, *, selection: QuerySet[Track], rows: QuerySet[Track], limit: int | None):
        self.selection = selection
        self.rows = rows
        self.limit = limit

    def count(self) -> int:
        unordered = self.selection.order_by()
        if self.limit:  # counting stops at the limit: `SELECT count(*) FROM (… LIMIT n)`
            return unordered.values("pk")[: self.limit].count()
        return unordered.count()

    def __len__(self) -> int:
        return self.count()

    def ids(self, key: slice) -> list[int]:
        selection = self.selection.values_list("pk", flat=True)
        if self.limit:
            selection = selection[: self.limit]
        return list(selection[key])

    def __getitem__(self, key: slice) -> list[Track]:
        ids = self.ids(key)
        found = self.rows.in_bulk(ids) if ids else {}
        return [found[pk] for pk in ids if pk in found]

    def __iter__(self) -> Iterator[Track]:
        return iter(self[:])


def smart_tracks(*, user: RequestUser, rules: Rules) -> SmartTracks:
    """The tracks the rules select, ordered and limited as they say, with the user's marks."""
    rows = library_selectors.track_list(user=user)
    queryset = rows.select_related(None)
    fields = rules.fields()
    user_id = user.pk if user.is_authenticated else 0
    if fields & _PROGRESS_FIELDS:
        queryset = queryset.annotate(
            user_progress=FilteredRelation("playback_progress", condition=Q(playback_progress__user_id=user_id))
        ).annotate(last_played=F("user_progress__updated_at"), play_count=Coalesce(F("user_progress__play_count"), 0))
    if "rating" in fields:
        queryset = queryset.annotate(rating_value=Coalesce(F("rating"), 0))
    queryset = queryset.filter(_group(rules.root, now=timezone.now(), user_id=user_id))
    queryset = queryset.order_by(*_ordering(rules.order))
    return SmartTracks(selection=queryset, rows=rows, limit=rules.limit)


def _ordering(order: str | None) -> list[Any]:
    if order is None:
        return ["title", "id"]
    if order.lstrip("-") == "random":
        return ["?"]
    name, nulls_last = _ORDER_BY[order.lstrip("-")]
    nulls = True if nulls_last else None
    expression = F(name).desc(nulls_last=nulls) if order.startswith("-") else F(name).asc(nulls_last=nulls)
    return [expression, "id"]


def _group(group: Group, *, now: dt.datetime, user_id: int) -> Q:
    parts = [
        _group(node, now=now, user_id=user_id)
        if isinstance(node, Group)
        else _condition(node, now=now, user_id=user_id)
        for node in group.nodes
    ]
    if not parts:
        return Q()  # an empty `all` is everything; an empty `any` too (nothing to choose among)
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if group.match == "all" else combined | part
    return combined


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _own_rows(condition: Condition, *, now: dt.datetime, user_id: int) -> Q | None:
    """A condition only the user's own rows (a mark, a progress row) can meet, as `id IN (their track ids
    that meet it)`: the planner then starts from those few rows (unique (user, track) indexes) instead of
    joining every track to them. None for a condition that a track without such a row meets too (a rating
    of 0, a play count of 0, not starred, not in progress)."""
    field, op, value = condition.field, condition.op, condition.value
    low = value[0] if op == "between" else value
    if field == "favourite" and value is True:
        return Q(pk__in=TrackMark.objects.filter(user_id=user_id, favourite_at__isnull=False).values("track_id"))
    if field == "rating" and (op == "gt" or (op in ("is", "between") and low >= 1)):
        lookup = {"is": "exact", "gt": "gt", "between": "range"}[op]
        marks = TrackMark.objects.filter(user_id=user_id, **{f"rating__{lookup}": value})
        return Q(pk__in=marks.values("track_id"))
    progress = PlaybackProgress.objects.filter(user_id=user_id)
    if field == "play_count" and (op == "gt" or (op in ("is", "between") and low >= 1)):
        lookup = {"is": "exact", "gt": "gt", "between": "range"}[op]
        return Q(pk__in=progress.filter(**{f"play_count__{lookup}": value}).values("track_id"))
    if field == "last_played":  # a track never played has no time to compare
        played = _date_condition("updated_at", op, value, now=now)
        return Q(pk__in=progress.filter(played).values("track_id"))
    if field == "in_progress" and value is True:
        return Q(pk__in=progress.filter(position_ms__gt=0, completed=False).values("track_id"))
    return None


def _date_condition(column: str, op: str, value: Any, *, now: dt.datetime) -> Q:
    if op == "in_the_last":
        return Q(**{f"{column}__gte": now - dt.timedelta(days=value)})
    if op == "gt":  # after that day
        return Q(**{f"{column}__gte": _day_start(value + dt.timedelta(days=1))})
    if op == "lt":  # before that day
        return Q(**{f"{column}__lt": _day_start(value)})
    low, high = value  # both days included
    return Q(**{f"{column}__gte": _day_start(low), f"{column}__lt": _day_start(high + dt.timedelta(days=1))})


def _condition(condition: Condition, *, now: dt.datetime, user_id: int) -> Q:
    own = _own_rows(condition, now=now, user_id=user_id)
    if own is not None:
        return own
    field, op, value = condition.field, condition.op, condition.value
    if field in ("title", "album"):
        return _text(SearchNorm(F("title" if field == "title" else "album__title")), op, value, names=False)
    if field in ("artist", "genre"):
        if op == "is":  # an exact name, artist or album artist: the GIN indexes on the arrays
            if field == "artist":
                return Q(artists__contains=[value]) | Q(album_artists__contains=[value])
            return Q(genres__contains=[value])
        # The track's artists (what search matches and its trigram index covers), or its genres.
        return _text(SearchNormArray(F("artists" if field == "artist" else "genres")), op, value, names=True)
    if field == "added":
        return _date_condition("created_at", op, value, now=now)
    if field == "favourite":
        return Q(favourite_at__isnull=not value)
    if field == "in_progress":
        started = Q(user_progress__position_ms__gt=0, user_progress__completed=False)
        return started if value else ~started | Q(user_progress__id__isnull=True)
    if field == "kind":
        return Q(library__kind=value)
    if field == "library":
        return Q(library_id=value)
    column = {"year": "year", "duration": "duration_ms", "play_count": "play_count", "rating": "rating_value"}[field]
    if field == "duration":
        value = (round(value[0] * 1000), round(value[1] * 1000)) if op == "between" else round(value * 1000)
    lookup = {"is": "exact", "gt": "gt", "lt": "lt", "between": "range"}[op]
    return Q(**{f"{column}__{lookup}": value})
