from __future__ import annotations

from celery import shared_task

from apps.monitoring.checks import readiness_run
from apps.monitoring.services import (
    heartbeat_record,
    readiness_record,
    worker_heartbeats_prune,
)


@shared_task(name="apps.monitoring.tasks.ping", bind=True)
def ping(self, source: str = "ping") -> None:
    """Proves a worker is alive and can write to the database."""
    heartbeat_record(source=source, hostname=self.request.hostname or "")


@shared_task(name="apps.monitoring.tasks.readiness_record_task")
def readiness_record_task() -> None:
    """Beat, every minute: run the readiness checks and record the result (uptime)."""
    readiness_record(report=readiness_run(), source="beat")
    worker_heartbeats_prune()
