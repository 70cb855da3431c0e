"""The transactional outbox: work that must follow a commit, stored with it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.outbox.choices import LIVE_STATUSES, OutboxStatus


class OutboxMessage(models.Model):
    """One Celery task to run once the transaction that wrote it has committed.

    Written in the same transaction as the change it follows (a study, a
    notification), so a broker outage delays the work and never loses it. A
    dispatcher in every worker publishes due rows; a worker marks its row done
    when the task has run; a row published but never run to the end (the broker lost
    it) is published again after ``available_at``.
    """

    task = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    publish_count = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)  # failed publishes in a row
    available_at = models.DateTimeField()  # publish (again) not before
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["available_at", "id"]
        indexes = [models.Index(fields=["status", "available_at"], name="outbox_due")]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(status__in=LIVE_STATUSES) & ~Q(dedupe_key=""),
                name="outbox_one_live_message_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task}({self.kwargs}) {self.status}"
