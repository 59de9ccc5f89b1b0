from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "content_modules.engagement"
    label = "engagement"
    verbose_name = "When and how to engage"
