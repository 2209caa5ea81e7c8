from django.apps import AppConfig


class SubsonicConfig(AppConfig):
    name = "apps.subsonic"
    verbose_name = "OpenSubsonic API"
