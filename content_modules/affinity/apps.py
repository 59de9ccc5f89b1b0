from django.apps import AppConfig


class AffinityConfig(AppConfig):
    name = "content_modules.affinity"
    label = "affinity"
    verbose_name = "HCP content affinity"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
