from django.urls import path

from apps.podcasts import api

urlpatterns = [
    path("podcasts/subscriptions", api.SubscriptionListView.as_view(), name="podcast-subscription-list"),
    path(
        "podcasts/subscriptions/<int:subscription_id>",
        api.SubscriptionDetailView.as_view(),
        name="podcast-subscription-detail",
    ),
    path(
        "podcasts/subscriptions/<int:subscription_id>/refresh",
        api.SubscriptionRefreshView.as_view(),
        name="podcast-subscription-refresh",
    ),
    path(
        "podcasts/subscriptions/<int:subscription_id>/played",
        api.SubscriptionPlayedView.as_view(),
        name="podcast-subscription-played",
    ),
    path(
        "podcasts/subscriptions/<int:subscription_id>/episodes",
        api.EpisodeListView.as_view(),
        name="podcast-episode-list",
    ),
    path("podcasts/episodes/new", api.NewEpisodeListView.as_view(), name="podcast-episode-new"),
    path("podcasts/episodes/<int:episode_id>", api.EpisodeDetailView.as_view(), name="podcast-episode-detail"),
    path(
        "podcasts/episodes/<int:episode_id>/download",
        api.EpisodeDownloadView.as_view(),
        name="podcast-episode-download",
    ),
    path("podcasts/opml", api.OpmlView.as_view(), name="podcast-opml"),
]
