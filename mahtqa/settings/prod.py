"""Production: every secret from the environment, HTTPS everywhere.

Required: SECRET_KEY, PHI_PSEUDONYM_KEY, DATABASE_URL, CELERY_BROKER_URL,
DJANGO_ALLOWED_HOSTS. Passes `manage.py check --deploy` with no warnings.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
PHI_PSEUDONYM_KEY = env.str("PHI_PSEUDONYM_KEY")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")


# Shared counters (token-failure limits, throttles) must be shared by every
# process: CACHE_URL, or the broker's Redis when the broker is Redis.
# Default: the broker's Redis server, but the next database number (a cache.clear()
# must never touch the queues). Without a Redis broker, set CACHE_URL.
def _cache_default(broker: str) -> str:
    parts = urlsplit(broker)
    if not parts.scheme.startswith("redis"):
        return "locmemcache://"
    db = int((parts.path or "/0").strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


CACHES = {"default": env.cache("CACHE_URL", default=_cache_default(CELERY_BROKER_URL))}
CACHES["default"].setdefault("KEY_PREFIX", "mahtqa-cache")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

# HTTPS. Behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=true.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
