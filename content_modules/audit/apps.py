from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "content_modules.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from . import checks  # noqa: F401 - registers the deploy checks
