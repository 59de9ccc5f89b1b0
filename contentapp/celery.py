"""The Celery app. Tasks run eagerly in-process when no REDIS_URL is set."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")

app = Celery("contentapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
