import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import REPO_ROOT

PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "mahtqa.settings.prod",
    "SECRET_KEY": "x" * 20 + "prod-secret-key-with-enough-entropy-0123456789abcdef",
    "PHI_PSEUDONYM_KEY": "prod-pseudonym-key",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "DJANGO_ALLOWED_HOSTS": "maht-qa.example.org",
}


def _manage(*args, env_extra, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DJANGO_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_prod_check_deploy_has_no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_extra=PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["SECRET_KEY", "PHI_PSEUDONYM_KEY"])
def test_prod_requires_secrets(missing):
    env = {k: v for k, v in PROD_ENV.items() if k != missing}
    result = _manage("check", env_extra=env, drop=(missing,))
    assert result.returncode != 0
    assert missing in result.stderr


def test_test_settings_use_postgres_redis_and_fast_hasher():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.PASSWORD_HASHERS[0].endswith("MD5PasswordHasher")
    assert settings.DICOM_MAX_UPLOAD_BYTES == 100 * 1024 * 1024
    assert not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)


@pytest.mark.django_db
def test_api_schema_and_docs_are_served_without_cdn(engineer_client, client):
    assert client.get("/api/schema/").status_code in (401, 403)
    schema = engineer_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    docs = engineer_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assert "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


@pytest.mark.slow
def test_the_wsgi_module_loads_every_view_module_when_a_worker_starts():
    """Not in the first request: django.setup() alone does not import the API views."""
    probe = (
        "import sys, django; django.setup(); before = 'apps.clinical.api' in sys.modules; "
        "import mahtqa.wsgi; print(before, 'apps.clinical.api' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(PROD_ENV)
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True"]
