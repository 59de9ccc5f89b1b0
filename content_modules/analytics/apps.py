from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "content_modules.analytics"
    label = "analytics"
    verbose_name = "Content performance"
