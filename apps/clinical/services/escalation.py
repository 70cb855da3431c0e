"""Escalation up the chain radiologist -> senior radiologist -> admin, with notifications.

Overdue tasks (past their SLA) move up automatically (beat); a reviewer can escalate by
hand with a reason. The next level is told by email (Django's backend) and, when the
policy names one, a webhook. Messages carry the study's public id and a link, never PHI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.clinical.choices import AuditAction, CaseEventKind, EscalationLevel, TaskStatus
from apps.clinical.models import CaseEvent, ReviewTask, RoutingPolicy, Study
from apps.clinical.services.audit import audit_record
from apps.clinical.services.policy import routing_policy_current
from apps.core.errors import Conflict, InvalidInput
from apps.core.webhooks import webhook_post, webhook_url_ok
from apps.outbox.services import outbox_enqueue

logger = logging.getLogger(__name__)

NOTIFY_TASK = "apps.clinical.tasks.review_task_notify_task"
ORDER = [EscalationLevel.RADIOLOGIST, EscalationLevel.SENIOR, EscalationLevel.ADMIN]


def notifications_current() -> dict:
    """Notification targets of the newest policy version that set them."""
    row = (
        RoutingPolicy.objects.filter(notifications__isnull=False)
        .order_by("-version")
        .values_list("notifications", flat=True)
        .first()
    )
    return row or {"emails": {}, "webhook_url": ""}


@dataclass(frozen=True)
class Audience:
    """Who an escalation to a level reaches: people by e-mail, and the webhook."""

    level: str
    usernames: tuple[str, ...]
    emails: tuple[str, ...]
    webhook: bool

    @property
    def nobody(self) -> bool:
        return not self.emails and not self.webhook

    def summary(self, *, done: bool = False) -> str:
        """One sentence for the reviewer's screen (``done``: for the case timeline, once
        sent); never an address."""
        label = EscalationLevel(self.level).label.lower()
        if self.nobody:
            return (
                f"Nobody could be notified: no active {label} has an e-mail address and "
                f"no address or webhook is set for this level (Thresholds, SLAs and escalation)."
            )
        parts = []
        if self.emails:
            who = ", ".join(self.usernames) if self.usernames else "the configured addresses"
            extra = len(self.emails) - len(self.usernames)
            if self.usernames and extra > 0:
                who += f" and {extra} configured address(es)"
            parts.append(f"{len(self.emails)} by e-mail ({who})")
        if self.webhook:
            parts.append("the webhook")
        return ("Notified " if done else "Notifying ") + " and ".join(parts) + "."


def escalation_audience(*, level: str, targets: dict | None = None) -> Audience:
    """Who an escalation to ``level`` reaches (``targets``: the policy's, if already read)."""
    targets = notifications_current() if targets is None else targets
    users = list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=level)
        .exclude(email="")
        .values_list("username", "email")
        .order_by("username")
    )
    emails = sorted({e for _, e in users} | set(targets.get("emails", {}).get(level, [])))
    webhook = webhook_url_ok(str(targets.get("webhook_url") or ""))
    return Audience(level, tuple(u for u, _ in users), tuple(emails), webhook)


def level_next(*, level: str, chain: list[str]) -> str | None:
    """The level above ``level`` in the admin's chain (None at the top)."""
    if level in chain:
        i = chain.index(level)
        return chain[i + 1] if i + 1 < len(chain) else None
    rank = ORDER.index(level) if level in ORDER else -1
    above = [lv for lv in chain if lv in ORDER and ORDER.index(lv) > rank]
    return above[0] if above else None


def _move_up(task: ReviewTask, *, to_level: str, sla: dict, now) -> None:
    task.level = to_level
    task.status = TaskStatus.OPEN
    task.claimed_by = None
    task.claimed_at = task.touched_at = None
    task.escalated_at = now
    task.due_at = now + timedelta(minutes=int(sla.get(task.priority, 24 * 60)))


def review_task_escalate(*, user, study: Study, reason: str, ip: str | None = None) -> ReviewTask:
    """Manual escalation with a reason, by the reviewer holding the case (or a senior)."""
    reason = (reason or "").strip()[:500]
    if not reason:
        raise InvalidInput(
            "reason_required", "Say why you escalate.", details={"reason": "required"}
        )
    policy = routing_policy_current()
    now = timezone.now()
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().filter(study=study).first()
        if task is None or task.status == TaskStatus.DONE:
            raise Conflict("not_open", "This case is already decided.")
        if task.status != TaskStatus.CLAIMED or task.claimed_by_id != user.pk:
            raise Conflict("not_claimed", "Claim the case before escalating it.")
        to_level = level_next(level=task.level, chain=list(policy.escalation_chain))
        if to_level is None:
            raise Conflict("top_of_chain", "This case is already at the top of the chain.")
        from_level = task.level
        _move_up(task, to_level=to_level, sla=policy.sla_minutes, now=now)
        task.escalation_reason = reason
        task.save()
        CaseEvent.objects.create(
            study=study, kind=CaseEventKind.ESCALATED, actor=user, level=to_level,
            message=f"{from_level} -> {to_level}: {reason}",
        )  # fmt: skip
        _notify_enqueue(task.pk)
    audit_record(
        actor=user,
        action=AuditAction.CASE_ESCALATE,
        target_type="study",
        target_id=str(study.public_id),
        ip=ip,
        details={"from": from_level, "to": to_level},
    )
    return task


def review_task_escalate_overdue(*, now=None) -> int:
    """Move every task past its SLA one level up the chain (beat). Safe to run twice:
    an escalated task gets a new due time, so it is not moved again until that passes."""
    policy = routing_policy_current()
    chain = list(policy.escalation_chain)
    now = now or timezone.now()
    moved = []
    with transaction.atomic():
        overdue = list(
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(status__in=(TaskStatus.OPEN, TaskStatus.CLAIMED), due_at__lt=now)
            .order_by("due_at")[:500]
        )
        for task in overdue:
            to_level = level_next(level=task.level, chain=chain)
            if to_level is None:
                continue  # at the top: stays overdue and visible as such
            from_level = task.level
            _move_up(task, to_level=to_level, sla=policy.sla_minutes, now=now)
            task.save()
            CaseEvent.objects.create(
                study_id=task.study_id, kind=CaseEventKind.OVERDUE, level=to_level,
                message=f"Past its SLA: {from_level} -> {to_level}",
            )  # fmt: skip
            moved.append(task.pk)
        for pk in moved:
            _notify_enqueue(pk)
    if moved:
        logger.warning("escalated %d overdue review tasks", len(moved))
    return len(moved)


def _notify_enqueue(task_id: int) -> None:
    """Notify the new level once this transaction commits (through the outbox)."""
    outbox_enqueue(
        task=NOTIFY_TASK, kwargs={"task_id": task_id}, dedupe_key=f"review-notify:{task_id}"
    )


def review_task_notify(*, task_id: int) -> int:
    """Tell the task's current level: email to its users and the configured addresses,
    and the webhook if set. Returns the number of email recipients.

    Safe to run twice: the task row is locked while sending, and an escalation whose
    level was already told (a NOTIFIED event since it moved there) is not told again."""
    with transaction.atomic():
        task = (
            ReviewTask.objects.select_for_update(of=("self",))
            .select_related("study")
            .filter(pk=task_id)
            .first()
        )
        if task is None or task.status == TaskStatus.DONE:
            return 0
        told = CaseEvent.objects.filter(
            study_id=task.study_id, kind=CaseEventKind.NOTIFIED, level=task.level
        )
        if task.escalated_at is not None:
            told = told.filter(created_at__gte=task.escalated_at)
        if told.exists():
            return 0
        return _notify(task)


def _notify(task: ReviewTask) -> int:
    task_id = task.pk
    targets = notifications_current()
    audience = escalation_audience(level=task.level, targets=targets)
    recipients = list(audience.emails)
    path = reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    base = getattr(settings, "MAHTQA_BASE_URL", "").rstrip("/")
    subject = f"[MAHT-QA] {task.priority} case escalated to {task.level}"
    body = (
        f"A {task.priority} review case was escalated to {task.level}.\n"
        f"Study: {task.study.public_id}\nDue: {task.due_at:%Y-%m-%d %H:%M %Z}\n"
        f"Open: {base}{path}\n"
    )
    if recipients:
        send_mail(subject, body, None, recipients, fail_silently=False)
    webhook = targets.get("webhook_url") or ""
    if audience.webhook:
        payload = {
            "event": "review_task_escalated",
            "study": str(task.study.public_id),
            "level": task.level,
            "priority": task.priority,
            "due_at": task.due_at.isoformat(),
            "url": f"{base}{path}",
        }
        try:
            webhook_post(webhook, payload, timeout=5)
        except OSError:
            logger.warning("escalation webhook failed for task id=%s", task_id)
    CaseEvent.objects.create(
        study_id=task.study_id, kind=CaseEventKind.NOTIFIED, level=task.level,
        message=audience.summary(done=True),
    )  # fmt: skip
    return len(recipients)
