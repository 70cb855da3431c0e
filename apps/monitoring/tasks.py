from __future__ import annotations

from celery import shared_task

from apps.monitoring.services import heartbeat_record


@shared_task(name="apps.monitoring.tasks.ping", bind=True)
def ping(self, source: str = "ping") -> None:
    """Proves a worker is alive and can write to the database."""
    heartbeat_record(source=source, hostname=self.request.hostname or "")
