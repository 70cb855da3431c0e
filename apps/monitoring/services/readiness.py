"""Writes for monitoring."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.monitoring.models import Heartbeat, ReadinessCheck

logger = logging.getLogger(__name__)


def heartbeat_record(*, source: str, hostname: str = "") -> Heartbeat:
    """Upsert the heartbeat of ``source``. Safe to run twice."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        source=source[:100], defaults={"hostname": hostname[:255], "seen_at": timezone.now()}
    )
    return heartbeat


def readiness_record(
    *, report: dict[str, Any], source: str, now: datetime | None = None
) -> ReadinessCheck | None:
    """Store one readiness run (uptime); a failed check files or folds into an issue.

    Never raises: recording must not break the probe (the database may be the
    thing that is down).
    """
    try:
        row = ReadinessCheck.objects.create(
            checked_at=now or timezone.now(), source=source[:20],
            ok=report.get("status") == "ok", results=report.get("checks", {}),
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        logger.warning("readiness not recorded: %s", type(exc).__name__)
        return None
    from apps.issues.signals import check_failed

    for name, result in report.get("checks", {}).items():
        if result.get("status") != "ok":
            check_failed.send(
                sender=__name__, app="monitoring", check=f"readiness.{name}",
                error=str(result.get("error", "failed")),
                severity="critical" if name == "database" else "high",
            )  # fmt: skip
    if source == "beat":  # the scheduled run: a failure is an escalation trigger
        _readiness_incidents(report)
    return row


def _readiness_incidents(report: dict[str, Any]) -> None:
    """A failed readiness check opens (or folds into) an incident: the model file -> data
    loss; anything else -> system down. Never raises (the probe must not break)."""
    from apps.monitoring.services.incidents import incident_trigger

    for name, result in report.get("checks", {}).items():
        if result.get("status") != "fail":  # "warn" (outbox backlog) is informational
            continue
        trigger = "data_loss" if name == "model" else "system_down"
        try:
            incident_trigger(
                trigger=trigger, key=f"readiness:{name}",
                title=f"Readiness check '{name}' failing",
                summary=str(result.get("error", "failed"))[:500],
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - e.g. the database is what is down
            logger.warning("incident not opened for %s: %s", name, type(exc).__name__)


def readiness_demo_seed(*, now: datetime, hours: int = 14 * 24) -> int:
    """Demo uptime history (one run an hour, a few failures); only on an empty table."""
    if ReadinessCheck.objects.exists():
        return 0
    rows = [
        ReadinessCheck(
            checked_at=now - timedelta(hours=h), source="seed", ok=h % 37 != 5, results={}
        )  # fmt: skip
        for h in range(hours)
    ]
    ReadinessCheck.objects.bulk_create(rows)
    return len(rows)


def worker_heartbeat_record(*, worker_key: str) -> None:
    """The main process of worker ``hostname:pid`` is alive (its dispatcher loop, every
    few seconds). A study held by a key that stopped beating is taken over."""
    heartbeat_record(source=f"worker:{worker_key}", hostname=worker_key.rsplit(":", 1)[0])


def worker_heartbeats_prune(*, older_than_s: float = 86400) -> int:
    """Forget workers (one row per main-process start) silent for a day."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    deleted, _ = Heartbeat.objects.filter(source__startswith="worker:", seen_at__lt=cutoff).delete()
    return deleted
