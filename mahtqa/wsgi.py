"""WSGI entry point (gunicorn mahtqa.wsgi). Defaults to production settings.

The URL configuration (and with it every view module) is loaded here, when a worker
starts, not by the first request it serves: that request used to wait for the imports
(about half a second per worker on 2 cores, measured with py-spy on gunicorn), and an
import error now stops the worker at boot instead of failing requests."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.prod")

application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - the property imports the URL modules
