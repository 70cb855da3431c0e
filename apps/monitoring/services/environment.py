"""Environment verification of this machine (issue 14, item 1): gather, check, store.

The checks are framework-free (``mahtqa.monitoring.environment``); this module passes in
what only Django knows (the settings, the active model version, a database and a broker
probe) and stores one report per worker and queue (the latest; idempotent upsert).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from apps.models.selectors import model_version_active, model_weights_path, model_weights_sha256
from apps.monitoring.models import WorkerEnvironment
from mahtqa.monitoring.environment import (
    EnvironmentInputs,
    EnvironmentReport,
    ModelRef,
    Thresholds,
    environment_verify,
)

BROKER_TIMEOUT_S = 2.0
REQUIREMENTS = "requirements/base.txt"  # relative to BASE_DIR


def database_probe() -> None:
    """One ``SELECT 1`` round trip on the default database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_probe_for(*, url: str | None = None) -> Callable[[], None]:
    """A probe that connects to the broker (``url``, default the configured one) and pings
    it where the transport can (Redis); raises when it is unreachable."""

    def probe() -> None:
        from mahtqa.celery import app

        with app.connection_for_write(url=url, connect_timeout=BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S
            )
            client = getattr(conn.default_channel, "client", None)
            if client is not None and callable(getattr(client, "ping", None)):
                client.ping()

    return probe


def _model_ref() -> tuple[ModelRef | None, str]:
    """The active model version, or the class of the error that kept us from reading it."""
    try:
        active = model_version_active()
    except DatabaseError as exc:
        return None, type(exc).__name__
    if active is None:
        return None, ""
    ref = ModelRef(
        name=active.name,
        version=active.version,
        path=model_weights_path(weights_path=active.weights_path),
        sha256=active.sha256,
    )
    return ref, ""


def _database_fix() -> str | None:
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        return f"ls -l {name}  # the SQLite file (embedded default); then: python manage.py migrate"
    return None  # the PostgreSQL fix of the check


def _broker_fix(url: str) -> str | None:
    if url.startswith("sqlite:") or url.startswith("sqla+"):
        return "ls -l var/celery-broker.sqlite  # the embedded broker file; check CELERY_BROKER_URL"
    return None  # the Redis fix of the check


def environment_inputs(
    *,
    requirements: Path | None = None,
    broker_url: str | None = None,
    thresholds: Thresholds | None = None,
) -> EnvironmentInputs:
    """What the checks need, from the settings and the model registry of this install."""
    requirements = Path(requirements or Path(settings.BASE_DIR) / REQUIREMENTS)
    try:
        label = str(requirements.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        label = str(requirements)
    storage_dirs: Mapping[str, Path] = {
        "media": Path(settings.MEDIA_ROOT),
        "phi": Path(settings.PHI_ROOT),
    }
    disk_dirs = {"models": Path(settings.MAHTQA_MODEL_DIR), "var": Path(settings.VAR_DIR)}
    seen = {p.resolve() for p in storage_dirs.values()}
    model, model_error = _model_ref()
    fixes = {
        k: v
        for k, v in {
            "database_fix": _database_fix(),
            "broker_fix": _broker_fix(broker_url or settings.CELERY_BROKER_URL),
        }.items()
        if v
    }
    return EnvironmentInputs(
        **fixes,
        device=str(settings.MAHTQA_DEVICE),
        requirements=requirements,
        requirements_label=label,
        model=model,
        model_error=model_error,
        storage_dirs=storage_dirs,
        disk_dirs={k: p for k, p in disk_dirs.items() if p.resolve() not in seen},
        database_probe=database_probe,
        broker_probe=broker_probe_for(url=broker_url),
        sha256_of=model_weights_sha256,
        thresholds=thresholds or Thresholds(),
    )


def environment_collect(
    *,
    requirements: Path | None = None,
    broker_url: str | None = None,
    thresholds: Thresholds | None = None,
) -> EnvironmentReport:
    """Run every check on this machine (``verify_environment`` and the worker task)."""
    return environment_verify(
        environment_inputs(requirements=requirements, broker_url=broker_url, thresholds=thresholds)
    )


def worker_environment_record(
    *, hostname: str, queue: str, report: EnvironmentReport, now: datetime | None = None
) -> WorkerEnvironment:
    """Store ``report`` as the latest of ``hostname`` on ``queue`` (one row each; upsert)."""
    row, _ = WorkerEnvironment.objects.update_or_create(
        hostname=hostname[:255],
        queue=queue[:50],
        defaults={
            "reported_at": now or timezone.now(),
            "status": report.status,
            "facts": report.facts,
            "checks": [c.as_dict() for c in report.checks],
        },
    )
    return row


def worker_environment_report(*, hostname: str, queue: str) -> WorkerEnvironment:
    """The heartbeat task's work: check this worker's environment and store it."""
    return worker_environment_record(hostname=hostname, queue=queue, report=environment_collect())
