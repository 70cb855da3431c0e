"""Outbox housekeeping (beat). Publishing itself runs in every worker's dispatcher loop."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from apps.outbox.services import outbox_dispatch, outbox_purge


@shared_task(acks_late=True)
def outbox_dispatch_task() -> int:
    """A backstop for deployments whose workers run without the dispatcher loop."""
    return outbox_dispatch().published


@shared_task(acks_late=True)
def outbox_purge_task() -> int:
    return outbox_purge(older_than=timedelta(hours=settings.MAHTQA_OUTBOX_KEEP_HOURS))
