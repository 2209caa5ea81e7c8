"""Favourites and ratings: one row per (user, item) holding both, upserted with INSERT … ON CONFLICT so two
devices starring at once never collide, and deleted when both are cleared."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.types import User
from apps.collections.models import RATING_MAX, RATING_MIN, AlbumMark, ArtistMark, Mark, TrackMark
from apps.collections.types import NO_MARK, Markable, MarkState
from apps.library.models import Album, Track
from apps.ops.errors import DomainError


def _target(item: Markable) -> tuple[type[Mark], str, int | str]:
    """The mark model of an item, its key column and the item's key."""
    if isinstance(item, Track):
        return TrackMark, "track_id", item.pk
    if isinstance(item, Album):
        return AlbumMark, "album_id", item.pk
    return ArtistMark, "name", item.name


def favourite_set(*, user: User, item: Markable, favourite: bool, at: datetime | None = None) -> MarkState:
    """Star (`favourite=True`) or unstar an item. Starring a starred item keeps the first time (idempotent
    PUT); `at` is when (now by default: OpenSubsonic clients may not send one)."""
    model, key_column, key = _target(item)
    if favourite:
        return _upsert(model, key_column, user=user, key=key, column="favourite_at", value=at or timezone.now())
    return _clear(model, key_column, user=user, key=key, column="favourite_at")


def rating_set(*, user: User, item: Markable, rating: int | None) -> MarkState:
    """Rate an item 1–5, or clear its rating with None. Out of range: DomainError naming `rating`."""
    if rating is not None and (type(rating) is not int or not RATING_MIN <= rating <= RATING_MAX):
        raise DomainError(
            "The rating must be a whole number from 1 to 5, or null to clear it.",
            fields={"rating": [f"Must be from {RATING_MIN} to {RATING_MAX}, or null."]},
        )
    model, key_column, key = _target(item)
    if rating is None:
        return _clear(model, key_column, user=user, key=key, column="rating")
    return _upsert(model, key_column, user=user, key=key, column="rating", value=rating)


def _upsert(
    model: type[Mark], key_column: str, *, user: User, key: int | str, column: str, value: datetime | int
) -> MarkState:
    # A favourite keeps its first timestamp; a rating takes the new value.
    update = "COALESCE(mark.favourite_at, EXCLUDED.favourite_at)" if column == "favourite_at" else "EXCLUDED.rating"
    table = model._meta.db_table
    sql = (
        f"INSERT INTO {table} AS mark (user_id, {key_column}, {column}) VALUES (%s, %s, %s) "
        f"ON CONFLICT (user_id, {key_column}) DO UPDATE SET {column} = {update} "
        "RETURNING mark.favourite_at, mark.rating"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, key, value])
        favourite_at, rating = cursor.fetchone()
    return MarkState(favourite_at=favourite_at, rating=rating)


def _clear(model: type[Mark], key_column: str, *, user: User, key: int | str, column: str) -> MarkState:
    other = "rating" if column == "favourite_at" else "favourite_at"
    table = model._meta.db_table
    where = f"user_id = %s AND {key_column} = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        # The row goes when nothing else is left on it (the table's check refuses an empty mark).
        cursor.execute(f"DELETE FROM {table} WHERE {where} AND {other} IS NULL", [user.pk, key])
        cursor.execute(
            f"UPDATE {table} SET {column} = NULL WHERE {where} RETURNING favourite_at, rating", [user.pk, key]
        )
        row = cursor.fetchone()
    return MarkState(favourite_at=row[0], rating=row[1]) if row else NO_MARK
