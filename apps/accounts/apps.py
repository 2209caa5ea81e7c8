from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Registers the OpenAPI description of ApiTokenAuthentication (drf-spectacular finds extensions
        # by subclass registration, so the module only has to be imported).
        from apps.accounts import schema  # noqa: F401
