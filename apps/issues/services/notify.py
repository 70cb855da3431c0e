"""Notifications: new critical issue, regression, past due. Rate-limited per key.

The limit is a sliding window per key (``NotifyThrottle`` row locked while
deciding): a storm of 1000 repeats sends one message. Delivery (e-mail to the
engineers, optional webhook) runs after commit; messages carry no PHI (titles
are scrubbed at intake) and only the issue's number, title and link.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from apps.core.webhooks import webhook_post, webhook_url_ok
from apps.issues.choices import ACTIVE_STATUSES, NotificationKind
from apps.issues.models import Issue, IssueSettings, Notification, NotifyThrottle
from apps.outbox.services import outbox_enqueue

logger = logging.getLogger(__name__)

DELIVER_TASK = "apps.issues.tasks.notification_deliver_task"

OVERDUE_DIGEST_MAX = 50


def _settings() -> IssueSettings:
    row, _ = IssueSettings.objects.get_or_create(pk=1)
    return row


def _throttle_pass(*, key: str, now: datetime, window: timedelta) -> bool:
    """True if a message for ``key`` may go now (and records it). Race-free."""
    try:
        with transaction.atomic():
            NotifyThrottle.objects.create(key=key, last_sent_at=now)
            return True
    except IntegrityError:
        pass
    throttle = NotifyThrottle.objects.select_for_update().get(key=key)
    if now - throttle.last_sent_at < window:
        throttle.suppressed += 1
        throttle.save(update_fields=["suppressed"])
        return False
    throttle.last_sent_at = now
    throttle.suppressed = 0
    throttle.save(update_fields=["last_sent_at", "suppressed"])
    return True


def notification_send(
    *, kind: str, key: str, subject: str, body: str, issue: Issue | None = None,
    now: datetime | None = None,
) -> Notification | None:  # fmt: skip
    """Queue one message unless ``key`` sent one within the window. None if suppressed."""
    now = now or timezone.now()
    config = _settings()
    with transaction.atomic():
        if not _throttle_pass(
            key=key, now=now, window=timedelta(minutes=config.notify_window_minutes)
        ):
            return None
        notification = Notification.objects.create(
            kind=kind, key=key[:100], issue=issue, subject=subject[:250], body=body
        )
        # Delivered by a worker once this commits (the outbox), never inside the request.
        outbox_enqueue(
            task=DELIVER_TASK, kwargs={"notification_id": notification.pk},
            dedupe_key=f"issue-notification:{notification.pk}",
        )  # fmt: skip
    return notification


def _recipients(config: IssueSettings) -> list[str]:
    User = get_user_model()  # noqa: N806
    engineers = (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__codename="triage_issue")
            | Q(user_permissions__codename="triage_issue")
            | Q(is_superuser=True)
        )
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    extra = [line.strip() for line in config.notify_emails.splitlines() if line.strip()]
    return sorted(set(engineers) | set(extra))


def notification_deliver(*, notification_id: int) -> Notification:
    """Send by e-mail (and webhook if configured). Safe to run twice (sent once)."""
    with transaction.atomic():  # a concurrent copy waits here, then sees it sent
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.sent_at is not None:
            return notification
        return _deliver(notification)


def _deliver(notification: Notification) -> Notification:
    config = _settings()
    recipients = _recipients(config)
    errors = []
    try:
        if recipients:
            send_mail(
                notification.subject, notification.body,
                getattr(settings, "DEFAULT_FROM_EMAIL", "mahtqa@localhost"), recipients,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a mail outage must not break intake
        errors.append(f"email:{type(exc).__name__}")
    if webhook_url_ok(config.webhook_url):
        payload = {
            "kind": notification.kind, "subject": notification.subject,
            "issue": notification.issue_id, "body": notification.body,
        }  # fmt: skip
        try:
            webhook_post(config.webhook_url, payload, timeout=3)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"webhook:{type(exc).__name__}")
    attempted = int(bool(recipients)) + int(webhook_url_ok(config.webhook_url))
    notification.recipients = recipients
    notification.error = " ".join(errors)[:200]
    # Sent once any channel delivered (a retry must not repeat it); when every channel
    # failed it stays unsent and the delivery task retries with back-off.
    if len(errors) < attempted or attempted == 0:
        notification.sent_at = timezone.now()
    notification.save(update_fields=["recipients", "sent_at", "error"])
    if errors:
        logger.warning("issue notification %s: %s", notification.pk, notification.error)
    return notification


def _issue_url(issue: Issue) -> str:
    base = getattr(settings, "MAHTQA_BASE_URL", "").rstrip("/")
    return f"{base}{reverse('issues:detail', args=[issue.pk])}"


def issue_notify_new_critical(*, issue: Issue, now: datetime | None = None) -> Notification | None:
    return notification_send(
        kind=NotificationKind.NEW_CRITICAL, key=f"new_critical:{issue.pk}", issue=issue, now=now,
        subject=f"[MAHT-QA] New critical issue #{issue.pk}: {issue.title}"[:250],
        body=f"A new critical {issue.category} issue was reported.\n\n"
        f"#{issue.pk} {issue.title}\nDue: {issue.due_at:%Y-%m-%d %H:%M %Z}\n{_issue_url(issue)}\n",
    )  # fmt: skip


def issue_notify_regression(*, issue: Issue, now: datetime | None = None) -> Notification | None:
    return notification_send(
        kind=NotificationKind.REGRESSION, key=f"regression:{issue.pk}", issue=issue, now=now,
        subject=f"[MAHT-QA] Regression: issue #{issue.pk} reopened: {issue.title}"[:250],
        body=f"Issue #{issue.pk} ({issue.severity}, {issue.category}) was resolved and has "
        f"happened again (recurrence {issue.recurrence_count}).\n\n{_issue_url(issue)}\n",
    )  # fmt: skip


def issues_overdue_notify(*, now: datetime | None = None) -> Notification | None:
    """One digest for the issues that went past due since the last digest."""
    now = now or timezone.now()
    overdue = list(
        Issue.objects.filter(
            status__in=ACTIVE_STATUSES, due_at__lt=now, overdue_notified_at__isnull=True
        ).order_by("due_at")[:OVERDUE_DIGEST_MAX]
    )
    if not overdue:
        return None
    lines = [f"#{i.pk} [{i.severity}] {i.title} (due {i.due_at:%Y-%m-%d %H:%M})" for i in overdue]
    with transaction.atomic():
        notification = notification_send(
            kind=NotificationKind.OVERDUE, key="overdue", now=now,
            subject=f"[MAHT-QA] {len(overdue)} issue(s) past due",
            body="These issues are past their response target:\n\n" + "\n".join(lines) + "\n",
        )  # fmt: skip
        if notification is not None:
            Issue.objects.filter(pk__in=[i.pk for i in overdue]).update(overdue_notified_at=now)
    return notification
