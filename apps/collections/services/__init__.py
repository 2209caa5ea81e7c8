"""Writes for collections: marks (favourites and ratings), playlists, smart playlists. Keyword-only and
typed, for every front-end; each takes items the caller already got through a selector (so already known
visible to the user) unless it says otherwise."""

from apps.collections.services.marks import favourite_set, rating_set

__all__ = ["favourite_set", "rating_set"]
