"""Reads of the outbox: backlog for probes and monitoring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from apps.outbox.choices import LIVE_STATUSES, OutboxStatus
from apps.outbox.models import OutboxMessage


def outbox_backlog(*, now: datetime | None = None) -> dict[str, Any]:
    """Counts per status and the age in seconds of the oldest message not yet picked up."""
    now = now or timezone.now()
    counts = dict(OutboxMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    oldest = OutboxMessage.objects.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.SENT]
    ).aggregate(t=Min("created_at"))["t"]
    return {
        "pending": counts.get(OutboxStatus.PENDING, 0),
        "sent": counts.get(OutboxStatus.SENT, 0),
        "dead": counts.get(OutboxStatus.DEAD, 0),
        "oldest_waiting_s": (now - oldest).total_seconds() if oldest else None,
    }


def outbox_task_status_counts(*, statuses: Iterable[str]) -> list[dict[str, Any]]:
    """Messages per (task, status) among ``statuses``: ``n`` and ``oldest`` (created)."""
    return list(
        OutboxMessage.objects.filter(status__in=list(statuses))
        .values("task", "status")
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .order_by()
    )


def outbox_live_summary() -> dict[str, Any]:
    """Messages still to deliver: ``n`` and ``oldest`` (the earliest due time)."""
    return OutboxMessage.objects.filter(status__in=LIVE_STATUSES).aggregate(
        n=Count("id"), oldest=Min("available_at")
    )
