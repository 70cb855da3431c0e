from __future__ import annotations

import socket

from celery import shared_task

from apps.monitoring.checks import readiness_run
from apps.monitoring.services import (
    heartbeat_record,
    readiness_record,
    worker_heartbeats_prune,
)
from apps.monitoring.services.clinical import clinical_monitor_run
from apps.monitoring.services.delivery import DeliveryFailed, incident_notification_deliver
from apps.monitoring.services.environment import worker_environment_report
from apps.monitoring.services.health import health_run, health_runs_prune
from apps.monitoring.services.incidents import incidents_escalate_due


@shared_task(name="apps.monitoring.tasks.ping", bind=True)
def ping(self, source: str = "ping") -> None:
    """Proves a worker is alive and can write to the database."""
    heartbeat_record(source=source, hostname=self.request.hostname or "")


@shared_task(name="apps.monitoring.tasks.environment_report_task", bind=True)
def environment_report_task(self, queue: str = "") -> None:
    """Beat, on each queue: this worker checks its environment and stores the report."""
    queue = queue or (self.request.delivery_info or {}).get("routing_key") or "default"
    worker_environment_report(hostname=self.request.hostname or socket.gethostname(), queue=queue)


@shared_task(name="apps.monitoring.tasks.readiness_record_task")
def readiness_record_task() -> None:
    """Beat, every minute: run the readiness checks and record the result (uptime)."""
    readiness_record(report=readiness_run(), source="beat")
    worker_heartbeats_prune()


@shared_task(
    name="apps.monitoring.tasks.incident_notification_deliver_task",
    acks_late=True, autoretry_for=(DeliveryFailed, OSError), retry_backoff=5,
    retry_backoff_max=300, max_retries=8,
)  # fmt: skip
def incident_notification_deliver_task(notification_id: int) -> bool:
    """One step of an incident's cascade (through the outbox); sent once."""
    notification = incident_notification_deliver(notification_id=notification_id)
    return notification is not None and notification.sent_at is not None


@shared_task(name="apps.monitoring.tasks.incidents_escalate_task")
def incidents_escalate_task() -> int:
    """Beat: unacknowledged incidents past their timer go to the next on-call level."""
    return incidents_escalate_due()


@shared_task(name="apps.monitoring.tasks.health_run_task")
def health_run_task() -> str:
    """Beat: the proactive health checks (history kept; red triggers open incidents)."""
    run = health_run(source="beat")
    health_runs_prune()
    return run.status


@shared_task(name="apps.monitoring.tasks.clinical_monitor_task")
def clinical_monitor_task() -> dict:
    """Beat, every MAHTQA_CLINICAL_MONITOR_SECONDS: thresholds and drift of the clinical
    monitor; each alert opens (or folds into) a safety-alert incident."""
    result = clinical_monitor_run()
    return {k: result[k] for k in ("cases", "alerts", "opened", "folded")}
