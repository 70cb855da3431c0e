"""Shared fixtures.

Role groups: ``_roles`` (autouse)
    The role groups come from a data migration, so a transactional test's flush
    deletes them. Every test that uses the database gets them back (only missing
    groups are created, from ``apps.accounts.roles``; groups that exist are left as
    they are, so a test of the migration still sees the migration's groups).

Factories: tests/factories/ (one module per app), e.g. ``UserFactory(role=...)``,
    ``ApiClientFactory()`` (``.raw_key``), ``StudyFactory(files=True)``,
    ``ReviewTaskFactory()``, ``IssueFactory(occurrences=2)``.

Users and clients
    ``user_factory`` / ``make_user(role=...)``; ``radiologist``, ``senior``,
    ``engineer``, ``admin_user``, ``api_client_user`` (users);
    ``client_for(role)`` / ``radiologist_client`` ... ``admin_client_``
    (logged-in Django test clients); ``api_token`` (raw key of a token of
    ``api_client_user``), ``token_client`` (DRF APIClient sending it).

Real Celery worker: ``celery_worker_process``
    A worker subprocess per test module (``celery -A mahtqa worker -Q
    inference,default,checks -c 1 --pool prefork``) with the test settings, talking to
    the test Redis DB 15 and to the *pytest-django test database*. Because the
    worker is another process, it only sees committed rows: a test using it
    must use ``transactional_db`` (or ``live_server``). Mark such tests
    ``@pytest.mark.worker``. Send tasks normally (``task.delay(...)`` or
    ``transaction.on_commit``), then poll the database with ``wait_until``::

        @pytest.mark.worker
        def test_x(transactional_db, celery_worker_process):
            ping.delay(source="x")
            assert wait_until(lambda: Heartbeat.objects.filter(source="x").exists())

    ``celery_worker_process.output()`` returns the worker's log so far (handy
    in assertion messages).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from apps.accounts.services import api_token_create
from tests.factories import UserFactory

REPO_ROOT = Path(__file__).resolve().parent.parent

# One run, one namespace: several pytest runs on one machine (developers side by
# side, CI) each get their own test database and their own Redis key prefix, which
# the worker subprocess inherits through the environment (see settings/test.py).
RUN_ID = os.environ.setdefault("MAHTQA_TEST_RUN_ID", f"r{os.getpid()}")  # see settings/test.py


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    from django.conf import settings

    settings.DATABASES["default"].setdefault("TEST", {})
    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_mahtqa_{RUN_ID}"


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, interval=0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


_DB_FIXTURES = {
    "db", "transactional_db", "live_server", "django_db_reset_sequences",
    "django_db_serialized_rollback",
}  # fmt: skip


def role_groups_restore() -> None:
    """Create the role groups that are missing (from ``apps.accounts.roles``)."""
    from django.contrib.auth.models import Group, Permission

    from apps.accounts.roles import ROLE_PERMISSIONS

    present = set(
        Group.objects.filter(name__in=list(ROLE_PERMISSIONS)).values_list("name", flat=True)
    )
    for role, codenames in ROLE_PERMISSIONS.items():
        if str(role) in present:
            continue
        group = Group.objects.create(name=str(role))
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


@pytest.fixture(autouse=True)
def _roles(request):
    """Restore the data-migration role groups for every test that uses the database."""
    if not (
        request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames)
    ):
        return
    request.getfixturevalue("db")  # transactional or not, as the test asked
    role_groups_restore()


@pytest.fixture
def user_factory():
    return UserFactory


@pytest.fixture
def make_user(db):
    def _make(role: str | None = None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return _make


@pytest.fixture
def radiologist(make_user):
    return make_user(Role.RADIOLOGIST, username="rad")


@pytest.fixture
def senior(make_user):
    return make_user(Role.SENIOR_RADIOLOGIST, username="senior")


@pytest.fixture
def engineer(make_user):
    return make_user(Role.ENGINEER, username="eng")


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.ADMIN, username="adm")


@pytest.fixture
def api_client_user(make_user):
    return make_user(Role.API_CLIENT, username="pacs-bridge")


@pytest.fixture
def client_for(make_user, client):
    """``client_for("engineer")`` -> a new Django test client logged in with that role."""
    from django.test import Client

    def _client(role: str | None):
        user = make_user(role)
        c = Client()
        c.force_login(user)  # the password path is tested in tests/accounts (axes needs a request)
        c.user = user
        return c

    return _client


@pytest.fixture
def radiologist_client(client_for):
    return client_for(Role.RADIOLOGIST)


@pytest.fixture
def senior_client(client_for):
    return client_for(Role.SENIOR_RADIOLOGIST)


@pytest.fixture
def engineer_client(client_for):
    return client_for(Role.ENGINEER)


@pytest.fixture
def admin_client_(client_for):
    return client_for(Role.ADMIN)


@pytest.fixture
def api_token(api_client_user) -> str:
    """The raw key of a fresh token belonging to ``api_client_user``."""
    _, raw_key = api_token_create(user=api_client_user, name="test")
    return raw_key


@pytest.fixture
def token_client(api_token) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {api_token}")
    return c


# --- Real Celery worker ------------------------------------------------------


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, hostname: str, log_path: Path) -> None:
        self.proc = proc
        self.hostname = hostname
        self.log_path = log_path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_alive(self) -> bool:
        return self.proc.poll() is None


def worker_start(
    *, env: dict[str, str], log_path: Path, queues: str = "inference,default,checks"
) -> tuple[subprocess.Popen, str]:
    hostname = f"pytest-{uuid.uuid4().hex[:8]}@%h"
    cmd = [
        sys.executable, "-m", "celery", "-A", "mahtqa", "worker",
        "-Q", queues, "-c", "1", "--pool", "prefork", "-n", hostname,
        "-l", "info", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    log = log_path.open("w")
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return proc, hostname


def worker_stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # warm shutdown: finish the current task
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# Module scope: a worker left running would also consume the tasks that later,
# unrelated tests enqueue and change the rows they assert on.
@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker):
    import redis
    from django.conf import settings
    from django.db import connection

    from mahtqa.celery import app

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    for key in client.scan_iter(match=f"{prefix}*"):  # only this run's keys
        client.delete(key)
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    database_url = f"postgres://{auth}@{host}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mahtqa.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
    proc, hostname = worker_start(env=env, log_path=log_path)
    worker = WorkerProcess(proc, hostname.replace("%h", os.uname().nodename), log_path)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not worker.is_alive():
                pytest.fail(f"Celery worker died at start:\n{worker.output()}")
            if app.control.ping(destination=[worker.hostname], timeout=1.0):
                break
        else:
            pytest.fail(f"Celery worker not ready in 90 s:\n{worker.output()}")
        yield worker
    finally:
        worker_stop(proc)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Counters in the cache (token-failure limits, throttles) never leak between tests."""
    from django.core.cache import cache

    from apps.clinical.services.sites import site_cache_clear

    cache.clear()
    site_cache_clear()  # site rows roll back with each test; their cached ids must too
    yield
    cache.clear()
    site_cache_clear()
