from django.urls import path

from apps.collections import api

urlpatterns = [
    path("tracks/<int:key>/favourite", api.TrackFavouriteView.as_view(), name="track-favourite"),
    path("tracks/<int:key>/rating", api.TrackRatingView.as_view(), name="track-rating"),
    path("albums/<int:key>/favourite", api.AlbumFavouriteView.as_view(), name="album-favourite"),
    path("albums/<int:key>/rating", api.AlbumRatingView.as_view(), name="album-rating"),
    # Artists are keyed by name (apps.collections.models): `AC/DC` is `artists/AC%2FDC/favourite`.
    path("artists/<path:key>/favourite", api.ArtistFavouriteView.as_view(), name="artist-favourite"),
    path("artists/<path:key>/rating", api.ArtistRatingView.as_view(), name="artist-rating"),
    path("favourites/artists", api.ArtistMarkListView.as_view(), name="favourite-artists"),
    path("playlists", api.PlaylistListView.as_view(), name="playlist-list"),
    path("playlists/import", api.PlaylistImportView.as_view(), name="playlist-import"),
    path("playlists/<int:playlist_id>", api.PlaylistDetailView.as_view(), name="playlist-detail"),
    path("playlists/<int:playlist_id>/entries", api.PlaylistEntriesAddView.as_view(), name="playlist-entries-add"),
    path(
        "playlists/<int:playlist_id>/entries/remove",
        api.PlaylistEntriesRemoveView.as_view(),
        name="playlist-entries-remove",
    ),
    path(
        "playlists/<int:playlist_id>/entries/move", api.PlaylistEntriesMoveView.as_view(), name="playlist-entries-move"
    ),
    path("playlists/<int:playlist_id>/m3u8", api.PlaylistExportView.as_view(), name="playlist-m3u8"),
    path("smart-playlists", api.SmartPlaylistListView.as_view(), name="smart-playlist-list"),
    path("smart-playlists/preview", api.SmartPreviewView.as_view(), name="smart-playlist-preview"),
    path("smart-playlists/builtin", api.BuiltinSmartPlaylistListView.as_view(), name="smart-playlist-builtins"),
    path(
        "smart-playlists/builtin/<slug:slug>/tracks",
        api.BuiltinSmartPlaylistTracksView.as_view(),
        name="smart-playlist-builtin-tracks",
    ),
    path(
        "smart-playlists/<int:smart_playlist_id>",
        api.SmartPlaylistDetailView.as_view(),
        name="smart-playlist-detail",
    ),
    path(
        "smart-playlists/<int:smart_playlist_id>/tracks",
        api.SmartPlaylistTracksView.as_view(),
        name="smart-playlist-tracks",
    ),
]
