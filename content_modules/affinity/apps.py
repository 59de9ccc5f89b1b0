from django.apps import AppConfig


class AffinityConfig(AppConfig):
    name = "content_modules.affinity"
    label = "affinity"
    verbose_name = "HCP content affinity"
