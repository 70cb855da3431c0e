"""Writes for monitoring."""

from __future__ import annotations

from django.utils import timezone

from apps.monitoring.models import Heartbeat


def heartbeat_record(*, source: str, hostname: str = "") -> Heartbeat:
    """Upsert the heartbeat of ``source``. Safe to run twice."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        source=source[:100], defaults={"hostname": hostname[:255], "seen_at": timezone.now()}
    )
    return heartbeat
