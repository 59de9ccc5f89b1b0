from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "content_modules.delivery"
    label = "delivery"
    verbose_name = "Delivery to the personalization engine"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
