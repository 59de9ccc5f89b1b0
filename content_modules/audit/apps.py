from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "content_modules.audit"
    label = "audit"
    verbose_name = "Audit trail"
