from __future__ import annotations

from celery import shared_task

from apps.issues.services import issues_overdue_notify


@shared_task(name="apps.issues.tasks.issues_overdue_notify_task")
def issues_overdue_notify_task() -> None:
    """Beat: one digest of issues newly past due. Safe to run twice (marks what it sent)."""
    issues_overdue_notify()
