from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "content_modules.library"
    label = "library"
    verbose_name = "Content library"
