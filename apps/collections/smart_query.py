"""Smart playlist rules (apps.collections.smart_rules, already checked) compiled to one ORM query over the
tracks the user may see, at read time: a change in the library, a play or a star shows at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import BooleanField, F, FilteredRelation, Func, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.types import RequestUser
from apps.collections.models import TrackMark
from apps.collections.smart_rules import Condition, Group, Rules
from apps.library import selectors as library_selectors
from apps.library.models import Track
from apps.library.search import SearchNorm, SearchNormArray
from apps.playback.models import PlaybackProgress

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


def _norm_like(normalised: Func | F, pattern: str) -> Q:
    # Both sides through revenge_search_norm, as apps.library.search matches: accent- and case-insensitive,
    # and the trigram / prefix indexes of migration library.0005 serve title, album title and artists.
    return Q(_Like(normalised, SearchNorm(Value(pattern))))


def _text(normalised: Func | F, op: str, value: str, *, names: bool) -> Q:
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
    user_id = user.pk if user.is_authenticated else 0
    if (rules.order or "").lstrip("-") in ("last_played", "play_count"):  # conditions use _own_rows instead
        queryset = queryset.annotate(
            user_progress=FilteredRelation("playback_progress", condition=Q(playback_progress__user_id=user_id))
        ).annotate(last_played=F("user_progress__updated_at"), play_count=Coalesce(F("user_progress__play_count"), 0))
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


class _AnyOf(Func):
    """`id = ANY(ARRAY(subquery))`: the subquery runs once (an InitPlan) and the tracks are read by primary key.
    With `id IN (subquery)` the planner, which expects a semi-join to keep most rows, read all 100 000
    tracks and hashed the user's rows (favourites 115 ms, most played 290 ms of their plans)."""

    template = "%(expressions)s)"
    arg_joiner = " = ANY(ARRAY"
    output_field = BooleanField()
    conditional = True


def _in_rows(rows: QuerySet[Any]) -> Q:
    return Q(_AnyOf(F("pk"), Subquery(rows.values("track_id"))))


def _true_at_zero(op: str, value: Any) -> bool:
    """Whether a count-like value (a play count, a rating) of 0, what a track without the user's row has,
    meets the condition."""
    if op == "is":
        return bool(value == 0)
    if op == "lt":
        return bool(value > 0)
    if op == "between":
        return bool(value[0] == 0)
    return False  # gt: values are never negative


def _own_rows(condition: Condition, *, now: dt.datetime, user_id: int) -> Q | None:
    """A condition on the user's own rows (marks, playback progress), as the ids of their rows that meet it
    (_in_rows: the planner starts from those few rows) or, when a track without a row meets it too (not
    starred, a play count or rating of 0, not in progress), as `NOT IN` the ids of their rows that do not (a
    hashed subplan, built once: no join of every track to their rows). None for other fields."""
    field, op, value = condition.field, condition.op, condition.value
    if field in ("favourite", "in_progress"):
        if field == "favourite":
            rows: QuerySet[Any] = TrackMark.objects.filter(user_id=user_id, favourite_at__isnull=False)
        else:
            rows = PlaybackProgress.objects.filter(user_id=user_id, position_ms__gt=0, completed=False)
        return _in_rows(rows) if value else ~Q(pk__in=rows.values("track_id"))
    if field == "last_played":  # a track never played has no time to compare
        played = _date_condition("updated_at", op, value, now=now)
        return _in_rows(PlaybackProgress.objects.filter(played, user_id=user_id))
    if field not in ("rating", "play_count"):
        return None
    if field == "rating":  # a mark may only star: its rating is then NULL, i.e. 0
        rows = TrackMark.objects.filter(user_id=user_id).annotate(value=Coalesce("rating", 0))
    else:
        rows = PlaybackProgress.objects.filter(user_id=user_id).annotate(value=F("play_count"))
    lookup = {"is": "exact", "gt": "gt", "lt": "lt", "between": "range"}[op]
    meets = Q(**{f"value__{lookup}": value})
    if _true_at_zero(op, value):
        return ~Q(pk__in=rows.exclude(meets).values("track_id"))
    return _in_rows(rows.filter(meets))


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
        # The stored normalised titles (migration library.0005), on their prefix and trigram indexes; the
        # same expression computed per row read every track: 'title starts with' took 480 ms on 100 000.
        return _text(F("search_title" if field == "title" else "album__search_title"), op, value, names=False)
    if field in ("artist", "genre"):
        if op == "is":  # an exact name, artist or album artist: the GIN indexes on the arrays
            if field == "artist":
                return Q(artists__contains=[value]) | Q(album_artists__contains=[value])
            return Q(genres__contains=[value])
        # The track's artists (stored normalised, what search matches and its trigram index covers), or
        # its genres (computed per row: no index).
        names = F("search_artists") if field == "artist" else SearchNormArray(F("genres"))
        return _text(names, op, value, names=True)
    if field == "added":
        return _date_condition("created_at", op, value, now=now)
    if field == "kind":
        return Q(library__kind=value)
    if field == "library":
        return Q(library_id=value)
    column = {"year": "year", "duration": "duration_ms"}[field]
    if field == "duration":
        value = (round(value[0] * 1000), round(value[1] * 1000)) if op == "between" else round(value * 1000)
    lookup = {"is": "exact", "gt": "gt", "lt": "lt", "between": "range"}[op]
    return Q(**{f"{column}__{lookup}": value})
