"""Value types the collections services and selectors take and give, for every front-end (REST, web,
OpenSubsonic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apps.library.models import Album, Track


@dataclass(frozen=True)
class Artist:
    """An artist as the library knows one: a name in Track.artists or album_artists (there is no table)."""

    name: str


Markable = Track | Album | Artist


@dataclass(frozen=True)
class MarkState:
    """A user's marks on one item: when they starred it (None: not starred) and their rating (None or 1–5)."""

    favourite_at: datetime | None
    rating: int | None


NO_MARK = MarkState(favourite_at=None, rating=None)
