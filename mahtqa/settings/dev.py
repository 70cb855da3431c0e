"""Embedded default for `make demo`: SQLite, a serverless broker, no secrets needed."""

from __future__ import annotations

from pathlib import Path

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Insecure on purpose: only the dev settings have a default key.
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-dev-only-4c1b0f2e9a7d4e1b8f3c6a5d2e9b7c1a"
)
PHI_PSEUDONYM_KEY = env.str("PHI_PSEUDONYM_KEY", default="insecure-dev-pseudonym-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL + IMMEDIATE transactions + a
    # generous busy timeout keep "database is locked" away.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# Broker needing no server: kombu's SQLAlchemy transport on a SQLite file,
# through apps.core.broker.Transport (polls every 0.1 s instead of 1 s).
# Chosen by measurement over filesystem:// (docs/architecture.md,
# tests/monitoring/test_embedded_broker.py).
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"sqlite:///{VAR_DIR / 'celery-broker.sqlite'}"
)
if CELERY_BROKER_URL.startswith("sqlite:"):
    CELERY_BROKER_TRANSPORT = "apps.core.broker:Transport"
    # Passed to SQLAlchemy's create_engine: wait for SQLite's lock, don't fail.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The demo registers the shared data sets (../shared/data) when they are present.
_SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
if not env.str("MAHTQA_DATASET_ROOTS", default="") and _SHARED_DATA.is_dir():
    MAHTQA_DATASET_ROOTS = [*MAHTQA_DATASET_ROOTS, _SHARED_DATA]  # noqa: F405
