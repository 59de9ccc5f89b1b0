from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "content_modules.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks to the personalization engine"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  (registers the tasks with the Celery app)
