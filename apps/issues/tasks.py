from __future__ import annotations

from celery import shared_task

from apps.issues.services import issues_overdue_notify
from apps.issues.services.notify import notification_deliver


@shared_task(name="apps.issues.tasks.issues_overdue_notify_task")
def issues_overdue_notify_task() -> None:
    """Beat: one digest of issues newly past due. Safe to run twice (marks what it sent)."""
    issues_overdue_notify()


class DeliveryFailed(Exception):
    """A channel (e-mail, webhook) failed; the task retries with back-off."""


@shared_task(
    name="apps.issues.tasks.notification_deliver_task", acks_late=True,
    autoretry_for=(DeliveryFailed, OSError), retry_backoff=5, retry_backoff_max=300,
    retry_jitter=True, max_retries=6,
)  # fmt: skip
def notification_deliver_task(notification_id: int) -> str:
    """Deliver one notification. Safe to run twice: what was delivered is recorded."""
    notification = notification_deliver(notification_id=notification_id)
    if notification.sent_at is None:
        raise DeliveryFailed(notification.error)
    return "sent"
