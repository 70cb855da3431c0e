"""Readiness checks. Each returns ``{"status": "ok"|"fail", "latency_ms": float, ...}``.

Output never carries PHI, paths or secrets: failures report the exception
class only (a database error message could contain a connection URL).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection

from apps.models.selectors import model_version_active, model_weights_path, model_weights_sha256
from apps.outbox.selectors import outbox_backlog

BROKER_TIMEOUT_S = 2.0


class CheckFailed(Exception):
    """A check failed with a safe, fixed reason."""


def _timed(fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        extra = fn() or {}
        result: dict[str, Any] = {"status": "ok", **extra}
    except CheckFailed as exc:
        result = {"status": "fail", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - report any failure, by class name only
        result = {"status": "fail", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    from mahtqa.celery import app

    with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


def _storage() -> dict[str, Any]:
    for alias in ("default", "phi"):
        storage = storages[alias]
        name = storage.save(f".readyz/{uuid.uuid4().hex}.tmp", ContentFile(b"ok"))
        storage.delete(name)
    return {"storages": ["default", "phi"]}


def _model() -> dict[str, Any]:
    active = model_version_active()
    if active is None:
        raise CheckFailed("no_active_model")
    path = model_weights_path(weights_path=active.weights_path)
    if not path.is_file():
        raise CheckFailed("weights_missing")
    if model_weights_sha256(path) != active.sha256:
        raise CheckFailed("sha256_mismatch")
    return {"name": active.name, "version": active.version}


def _outbox() -> dict[str, Any]:
    """Work waiting to be published or picked up. Informational ("warn", never "fail"):
    intake keeps accepting while no worker runs; the backlog says work is waiting."""
    backlog = outbox_backlog()
    oldest = backlog["oldest_waiting_s"]
    stale = oldest is not None and oldest > settings.MAHTQA_OUTBOX_STALE_S
    return {**backlog, **({"status": "warn", "warning": "outbox_backlog"} if stale else {})}


CHECKS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "database": _database,
    "broker": _broker,
    "storage": _storage,
    "model": _model,
    "outbox": _outbox,
}


def readiness_run() -> dict[str, Any]:
    results = {name: _timed(fn) for name, fn in CHECKS.items()}
    ok = all(r["status"] != "fail" for r in results.values())
    return {"status": "ok" if ok else "fail", "checks": results}
