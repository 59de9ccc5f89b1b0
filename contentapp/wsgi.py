"""WSGI entry point (gunicorn contentapp.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")

application = get_wsgi_application()
