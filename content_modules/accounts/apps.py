from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "content_modules.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
