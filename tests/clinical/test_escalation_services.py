"""Escalation: overdue tasks move up the chain, manual escalation, notifications, timeline."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts.choices import Role
from apps.clinical.choices import CaseEventKind, EscalationLevel, Priority, TaskStatus
from apps.clinical.models import CaseEvent, ReviewTask
from apps.clinical.review_selectors import case_timeline
from apps.clinical.services.escalation import (
    level_next,
    review_task_escalate,
    review_task_escalate_overdue,
    review_task_notify,
)
from apps.clinical.services.policy import routing_policy_update
from apps.clinical.services.review import review_decide, review_task_claim_next
from apps.clinical.services.thresholds import thresholds_update
from apps.core.errors import Conflict, InvalidInput
from apps.outbox.models import OutboxMessage
from tests.clinical.review_factories import make_case

pytestmark = pytest.mark.django_db
CHAIN = ["radiologist", "senior_radiologist", "admin"]


def test_level_next_follows_the_chain():
    assert level_next(level="radiologist", chain=CHAIN) == "senior_radiologist"
    assert level_next(level="senior_radiologist", chain=CHAIN) == "admin"
    assert level_next(level="admin", chain=CHAIN) is None
    assert level_next(level="radiologist", chain=["radiologist", "admin"]) == "admin"
    assert level_next(level="senior_radiologist", chain=["radiologist"]) is None


def test_overdue_urgent_case_moves_to_senior_with_a_new_sla(
    radiologist, senior, django_capture_on_commit_callbacks
):
    task = make_case(
        priority=Priority.URGENT, age=timedelta(minutes=61), due_in=-timedelta(minutes=1)
    )
    on_time = make_case(age=timedelta(hours=1))
    review_task_claim_next(user=radiologist)  # the overdue one is claimed: escalation frees it
    assert review_task_escalate_overdue() == 1
    notes = OutboxMessage.objects.filter(task="apps.clinical.tasks.review_task_notify_task")
    assert list(notes.values_list("kwargs", flat=True)) == [{"task_id": task.pk}]  # one, queued
    task.refresh_from_db()
    on_time.refresh_from_db()
    assert task.level == EscalationLevel.SENIOR
    assert task.status == TaskStatus.OPEN
    assert task.claimed_by is None
    assert (
        timezone.now() + timedelta(minutes=59) < task.due_at <= timezone.now() + timedelta(hours=1)
    )
    assert on_time.level == EscalationLevel.RADIOLOGIST
    assert CaseEvent.objects.filter(study=task.study, kind=CaseEventKind.OVERDUE).count() == 1
    assert review_task_escalate_overdue() == 0  # safe to run twice
    assert review_task_claim_next(user=senior, escalated=True).pk == task.pk


def test_top_of_the_chain_stays_overdue_and_visible():
    task = make_case(level=EscalationLevel.ADMIN, due_in=-timedelta(hours=2))
    assert review_task_escalate_overdue() == 0
    task.refresh_from_db()
    assert task.level == EscalationLevel.ADMIN
    assert task.due_at < timezone.now()


def test_the_admin_chain_is_honoured(admin_user):
    routing_policy_update(user=admin_user, escalation_chain=["radiologist", "admin"])
    task = make_case(due_in=-timedelta(minutes=5))
    review_task_escalate_overdue()
    task.refresh_from_db()
    assert task.level == EscalationLevel.ADMIN


def test_notification_emails_the_next_level_without_phi(senior, radiologist, admin_user):
    thresholds_update(
        user=admin_user,
        changes={"notifications": {"emails": {"senior_radiologist": ["duty@example.test"]},
                                   "webhook_url": ""}},
    )  # fmt: skip
    task = make_case(level=EscalationLevel.SENIOR)
    assert review_task_notify(task_id=task.pk) == 2
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert set(msg.to) == {senior.email, "duty@example.test"}
    assert radiologist.email not in msg.to
    assert str(task.study.public_id) in msg.body
    assert task.study.sop_instance_uid not in msg.body
    assert task.study.patient_pseudonym not in msg.body
    assert CaseEvent.objects.filter(study=task.study, kind=CaseEventKind.NOTIFIED).exists()


def test_webhook_gets_a_json_post(admin_user):
    thresholds_update(
        user=admin_user,
        changes={"notifications": {"emails": {}, "webhook_url": "https://hooks.example.test/x"}},
    )
    task = make_case(level=EscalationLevel.ADMIN)
    with mock.patch("urllib.request.urlopen") as urlopen:
        review_task_notify(task_id=task.pk)
    req = urlopen.call_args.args[0]
    assert req.full_url == "https://hooks.example.test/x"
    body = json.loads(req.data)
    assert body["study"] == str(task.study.public_id)
    assert body["level"] == "admin"
    assert task.study.sop_instance_uid not in req.data.decode()


def test_manual_escalation_needs_a_reason_and_the_claim(radiologist, senior):
    task = make_case()
    with pytest.raises(Conflict) as err:
        review_task_escalate(user=radiologist, study=task.study, reason="unsure")
    assert err.value.code == "not_claimed"
    review_task_claim_next(user=radiologist)
    with pytest.raises(InvalidInput) as err:
        review_task_escalate(user=radiologist, study=task.study, reason="")
    assert err.value.code == "reason_required"
    review_task_escalate(user=radiologist, study=task.study, reason="unusual anatomy")
    task.refresh_from_db()
    assert task.level == EscalationLevel.SENIOR
    assert task.escalation_reason == "unusual anatomy"
    assert review_task_claim_next(user=radiologist) is None  # gone from the radiologist queue
    assert review_task_claim_next(user=senior, escalated=True).pk == task.pk
    review_decide(user=senior, study=task.study, action="reject", reason="not a lateral ceph")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    kinds = [row["kind"] for row in case_timeline(study=task.study)]
    assert kinds == ["routed", "claimed", "escalated", "claimed", "decided"]


def test_escalating_past_the_top_is_refused(make_user):
    admin = make_user(Role.ADMIN)
    task = make_case(level=EscalationLevel.ADMIN)
    review_task_claim_next(user=admin, escalated=True)
    with pytest.raises(Conflict) as err:
        review_task_escalate(user=admin, study=task.study, reason="x")
    assert err.value.code == "top_of_chain"
    assert ReviewTask.objects.get(pk=task.pk).level == EscalationLevel.ADMIN


def test_a_notification_run_twice_is_sent_once(admin_user, senior):
    """The outbox may deliver a message twice (a re-publish): one e-mail per escalation."""
    thresholds_update(
        user=admin_user,
        changes={"notifications": {"emails": {"senior_radiologist": ["duty@example.test"]},
                                   "webhook_url": ""}},
    )  # fmt: skip
    task = make_case(level=EscalationLevel.SENIOR)
    task.escalated_at = timezone.now()
    task.save(update_fields=["escalated_at"])
    assert review_task_notify(task_id=task.pk) == 2
    assert review_task_notify(task_id=task.pk) == 0
    assert len(mail.outbox) == 1
