"""WSGI entry point (gunicorn mahtqa.wsgi). Defaults to production settings."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.prod")

application = get_wsgi_application()
