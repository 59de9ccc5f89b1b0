from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "content_modules.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        # Connects the login receiver that starts a session's idle clock.
        from . import middleware  # noqa: F401
