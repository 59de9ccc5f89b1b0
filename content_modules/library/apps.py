from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "content_modules.library"
    label = "library"
    verbose_name = "Content library"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from contentapp.db import clamp_out_of_range_times

        # Any time a PostgreSQL column holds loads; none breaks a page (contentapp/db.py).
        connection_created.connect(clamp_out_of_range_times, dispatch_uid="clamp_times")
