"""Reads of the outbox: backlog for probes and monitoring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from apps.outbox.choices import OutboxStatus
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
