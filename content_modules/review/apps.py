from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "content_modules.review"
    label = "review"
    verbose_name = "MLR review"
