from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "apps.streaming"
    label = "streaming"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from apps.ops.metrics import scrape_hook_register
        from apps.streaming.scrape import streaming_metrics_sample

        scrape_hook_register(streaming_metrics_sample)
