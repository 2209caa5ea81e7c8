from django.urls import path

from apps.library import api

urlpatterns = [
    path("libraries", api.LibraryListView.as_view(), name="library-list"),
    path("libraries/<int:library_id>", api.LibraryDetailView.as_view(), name="library-detail"),
    path("libraries/<int:library_id>/scan", api.LibraryScanView.as_view(), name="library-scan"),
    path("scans/<int:job_id>", api.ScanJobDetailView.as_view(), name="scan-detail"),
    path("tracks", api.TrackListView.as_view(), name="track-list"),
    path("tracks/<int:track_id>", api.TrackDetailView.as_view(), name="track-detail"),
    path("albums", api.AlbumListView.as_view(), name="album-list"),
    path("albums/<int:album_id>", api.AlbumDetailView.as_view(), name="album-detail"),
    path("albums/<int:album_id>/cover", api.AlbumCoverView.as_view(), name="album-cover"),
    path("tracks/<int:track_id>/cover", api.TrackCoverView.as_view(), name="track-cover"),
    path("tracks/<int:track_id>/lyrics", api.TrackLyricsView.as_view(), name="track-lyrics"),
    path("tracks/<int:track_id>/loudness", api.TrackLoudnessView.as_view(), name="track-loudness"),
    path("artists", api.ArtistListView.as_view(), name="artist-list"),
    path("genres", api.GenreListView.as_view(), name="genre-list"),
    path("search", api.SearchView.as_view(), name="search"),
]
