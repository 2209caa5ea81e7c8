from django.apps import AppConfig


class PodcastsConfig(AppConfig):
    name = "apps.podcasts"
    label = "podcasts"
    verbose_name = "Podcasts"
