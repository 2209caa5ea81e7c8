from django.urls import path

from apps.web import collection_views, connect_views, podcast_views, search_views, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("libraries/", views.library_list, name="library-list"),
    path("libraries/<int:library_id>/", views.library_detail, name="library-detail"),
    path("albums/", views.album_list, name="album-list"),
    path("albums/<int:album_id>/", views.album_detail, name="album-detail"),
    path("artists/<path:name>/", views.artist_detail, name="artist-detail"),
    path("tracks/", views.track_list, name="track-list"),
    path("tracks/<int:track_id>/", views.track_detail, name="track-detail"),
    path("history/", views.history, name="history"),
    path("search/", search_views.search, name="search"),
    path("connect/", connect_views.connect, name="connect"),
    path("connect/<int:app_password_id>/revoke", connect_views.connect_revoke, name="connect-revoke"),
    path("favourites/", collection_views.favourites, name="favourites"),
    path("playlists/", collection_views.playlist_list, name="playlist-list"),
    path("playlists/<int:playlist_id>/", collection_views.playlist_detail, name="playlist-detail"),
    path("smart-playlists/", collection_views.smart_playlist_list, name="smart-playlist-list"),
    path(
        "smart-playlists/<int:smart_playlist_id>/",
        collection_views.smart_playlist_detail,
        name="smart-playlist-detail",
    ),
    path(
        "smart-playlists/builtin/<slug:slug>/", collection_views.smart_playlist_builtin, name="smart-playlist-builtin"
    ),
    path("podcasts/", podcast_views.podcast_list, name="podcast-list"),
    path("podcasts/subscribe", podcast_views.podcast_subscribe, name="podcast-subscribe"),
    path("podcasts/<int:subscription_id>/", podcast_views.podcast_detail, name="podcast-detail"),
    path("podcasts/<int:subscription_id>/refresh", podcast_views.podcast_refresh, name="podcast-refresh"),
    path("podcasts/episodes/<int:episode_id>/download", podcast_views.episode_download, name="episode-download"),
]
