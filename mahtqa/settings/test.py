"""Settings for pytest: PostgreSQL and Redis, like production."""

from __future__ import annotations

import os

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="test-only-secret-key-not-for-use-anywhere-else-0123")
PHI_PSEUDONYM_KEY = env.str("PHI_PSEUDONYM_KEY", default="test-pseudonym-key")
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test"),
}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# Each pytest run (the worker subprocess inherits MAHTQA_TEST_RUN_ID) has its own key prefix,
# so runs side by side never consume each other's tasks.
TEST_RUN_ID = os.environ.setdefault("MAHTQA_TEST_RUN_ID", f"r{os.getpid()}")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405 - from base
    "global_keyprefix": f"mahtqa-{TEST_RUN_ID}-",
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_TEST_VAR = VAR_DIR / "test"
MEDIA_ROOT = _TEST_VAR / "media"
PHI_ROOT = _TEST_VAR / "phi"
MAHTQA_MODEL_DIR = _TEST_VAR / "models"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "phi": {"BACKEND": "apps.core.storage.PhiStorage", "OPTIONS": {"location": PHI_ROOT}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = _TEST_VAR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True

# Datasets: the store under the test var dir; tests set MAHTQA_DATASET_ROOTS to their
# own tmp folders (plus the shared data, read-only) with override_settings.
MAHTQA_DATASET_STORE = _TEST_VAR / "datasets"
MAHTQA_DATASET_ROOTS = [MAHTQA_DATASET_STORE]
