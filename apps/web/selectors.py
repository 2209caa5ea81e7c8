"""Reads the pages need beyond the library and playback selectors, scoped the same way: through them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.library import selectors as library_selectors
from apps.library.models import Album, Library
from apps.playback import selectors as playback_selectors
from apps.playback.selectors import ProgressRow


def continue_listening(*, user, limit: int) -> list[ProgressRow]:
    """What the progress API answers for `?state=in_progress`: started, not finished, newest first."""
    return list(playback_selectors.progress_in_progress(user=user)[0:limit])


def albums_recent(*, user, limit: int) -> list[Album]:
    return list(library_selectors.album_list(user=user).order_by("-created_at", "-id")[:limit])


def library_options(*, user) -> list[dict[str, Any]]:
    """The libraries a filter may offer: only those the user may see."""
    return list(Library.objects.visible_to(user).order_by("name").values("id", "name", "kind"))


def genre_options(*, user, library_id: int | None = None) -> list[str]:
    return [row["name"] for row in library_selectors.name_counts(user=user, column="genres", library_id=library_id)]


def library_albums(*, user, library: Library) -> QuerySet[Album]:
    return library_selectors.album_list(user=user).filter(library=library).order_by("title", "album_artist", "id")
