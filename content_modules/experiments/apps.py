from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "content_modules.experiments"
    label = "experiments"
    verbose_name = "Experiments on recommendations"
