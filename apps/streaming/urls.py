from django.urls import path

from apps.streaming import api

urlpatterns = [
    path("tracks/<int:track_id>/stream", api.StreamDecisionView.as_view(), name="track-stream"),
    path("tracks/<int:track_id>/master.m3u8", api.MasterPlaylistView.as_view(), name="track-master"),
    path("tracks/<int:track_id>/file", api.TrackFileView.as_view(), name="track-file"),
    path("tracks/<int:track_id>/files/<int:index>", api.TrackFileIndexView.as_view(), name="track-file-n"),
    path("tracks/<int:track_id>/download", api.TrackDownloadView.as_view(), name="track-download"),
]
