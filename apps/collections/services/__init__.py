"""Writes for collections: marks (favourites and ratings), playlists, smart playlists. Keyword-only and
typed, for every front-end; each takes items the caller already got through a selector (so already known
visible to the user) unless it says otherwise."""

from apps.collections.services.marks import favourite_set, rating_set
from apps.collections.services.playlists import (
    PlaylistImport,
    UnmatchedLine,
    playlist_create,
    playlist_delete,
    playlist_entries_add,
    playlist_entries_move,
    playlist_entries_remove,
    playlist_import_m3u8,
    playlist_update,
    playlists_repair,
)
from apps.collections.services.smart import (
    smart_playlist_create,
    smart_playlist_delete,
    smart_playlist_update,
    smart_rules_check,
)

__all__ = [
    "PlaylistImport",
    "UnmatchedLine",
    "favourite_set",
    "playlist_create",
    "playlist_delete",
    "playlist_entries_add",
    "playlist_entries_move",
    "playlist_entries_remove",
    "playlist_import_m3u8",
    "playlist_update",
    "playlists_repair",
    "rating_set",
    "smart_playlist_create",
    "smart_playlist_delete",
    "smart_playlist_update",
    "smart_rules_check",
]
