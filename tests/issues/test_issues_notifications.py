"""Notifications: new critical, regression, past due; a storm sends one message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from apps.issues.models import Issue, Notification, NotifyThrottle
from apps.issues.services import issue_triage, issues_overdue_notify
from tests.helpers import delivered, outbox_run

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("engineer"),  # a recipient with an e-mail address
]
LOCMEM = override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")


@LOCMEM
def test_storm_of_1000_critical_repeats_sends_one_message(
    report, django_capture_on_commit_callbacks
):
    with delivered():
        for i in range(1000):
            report(title=f"CUDA out of memory at step {i}", category="training",
                   severity="critical")  # fmt: skip
    assert Issue.objects.count() == 1
    assert Issue.objects.get().occurrence_count == 1000
    assert len(mail.outbox) == 1
    assert "New critical issue" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["eng@example.test"]


@LOCMEM
def test_storm_of_distinct_alerts_for_one_issue_is_throttled(
    report, engineer, django_capture_on_commit_callbacks
):
    issue, _ = report(title="flaky", severity="high")
    with delivered():
        for _ in range(50):  # resolve / recur loop: 50 regressions
            issue_triage(issue=issue, actor=engineer, status="resolved")
            report(title="flaky", severity="high")
    issue.refresh_from_db()
    assert issue.recurrence_count == 50
    assert len(mail.outbox) == 1
    assert "Regression" in mail.outbox[0].subject
    assert NotifyThrottle.objects.get(key=f"regression:{issue.pk}").suppressed == 49


@LOCMEM
def test_after_the_window_a_new_message_may_go(
    report, engineer, django_capture_on_commit_callbacks
):
    issue, _ = report(title="flaky", severity="high")
    start = timezone.now()
    with delivered():
        issue_triage(issue=issue, actor=engineer, status="resolved", now=start)
        report(title="flaky", now=start)
        issue_triage(issue=issue, actor=engineer, status="resolved", now=start)
        report(title="flaky", now=start + timedelta(minutes=30))  # within 60 min: suppressed
        issue_triage(issue=issue, actor=engineer, status="resolved", now=start)
        report(title="flaky", now=start + timedelta(minutes=61))  # window passed
    assert len(mail.outbox) == 2


@LOCMEM
def test_non_critical_new_issue_sends_nothing(report, django_capture_on_commit_callbacks):
    with delivered():
        report(title="minor", severity="medium")
    assert mail.outbox == []


@LOCMEM
def test_overdue_digest_once_per_issue(report, django_capture_on_commit_callbacks):
    past = timezone.now() - timedelta(hours=3)
    report(title="old high", severity="high", now=past - timedelta(hours=8))
    report(title="old critical", severity="critical", now=past)
    report(title="fresh low", severity="low")
    outbox_run()  # the new-critical message of "old critical" goes out first
    mail.outbox.clear()
    with delivered():
        sent = issues_overdue_notify()
    assert sent is not None
    assert len(mail.outbox) == 1
    assert "2 issue(s) past due" in mail.outbox[0].subject
    assert "old high" in mail.outbox[0].body
    assert "fresh low" not in mail.outbox[0].body
    with delivered():
        assert issues_overdue_notify(now=timezone.now() + timedelta(hours=2)) is None
    assert len(mail.outbox) == 1


@LOCMEM
def test_webhook_failure_is_recorded_not_raised(report, django_capture_on_commit_callbacks):
    from apps.issues.services import issue_settings_update

    issue_settings_update(actor=None, webhook_url="http://127.0.0.1:9/hook")
    with delivered():
        report(title="boom", severity="critical")
    notification = Notification.objects.get()
    assert notification.sent_at is not None
    assert notification.error.startswith("webhook:")
    assert len(mail.outbox) == 1


@LOCMEM
def test_delivery_run_twice_sends_once(report):
    from apps.issues.services.notify import notification_deliver

    with delivered():
        issue, _ = report(title="GPU fell off the bus", severity="critical")
    note = Notification.objects.get(issue=issue)
    assert note.sent_at is not None
    notification_deliver(notification_id=note.pk)  # a second copy of the message
    assert len(mail.outbox) == 1
