from django.urls import path

from apps.playback import api

urlpatterns = [
    path("progress", api.ProgressListView.as_view(), name="progress-list"),
    path("progress/batch", api.ProgressBatchView.as_view(), name="progress-batch"),
    path("progress/<int:track_id>", api.ProgressDetailView.as_view(), name="progress-detail"),
    path("tracks/<int:track_id>/played", api.TrackPlayedView.as_view(), name="track-played"),
    path("tracks/<int:track_id>/bookmarks", api.TrackBookmarksView.as_view(), name="track-bookmarks"),
    path("bookmarks/<int:bookmark_id>", api.BookmarkDetailView.as_view(), name="bookmark-detail"),
    path("sessions", api.SessionListView.as_view(), name="session-list"),
    path("sessions/<int:session_id>", api.SessionDetailView.as_view(), name="session-detail"),
    path("queue", api.QueueView.as_view(), name="play-queue"),
    path("listens", api.ListenListView.as_view(), name="listen-list"),
]
