"""Incidents: the guide's EmergencyResponseSystem.

A trigger (system down, safety alert, data loss, security breach) opens an incident, or
folds into the active one with the same fingerprint (``trigger:key``). Opening runs the
response plan: the immediate actions the admin enabled (review-all on a safety alert), the
first step of the notification cascade (through the outbox), and a timer: unacknowledged
after ``ack_timeout_minutes``, the next on-call level is told (beat). Acknowledging, by the
link in the message or on the page, stops the cascade. Every step is in the timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict, DomainError, InvalidInput, NotFound
from apps.monitoring.choices import (
    ACTIVE_INCIDENT_STATUSES,
    TRIGGER_SEVERITY,
    IncidentEventKind,
    IncidentSeverity,
    IncidentStatus,
    Trigger,
)
from apps.monitoring.models import Incident, IncidentEvent, IncidentNotification, MonitorSettings
from apps.outbox.services import outbox_enqueue

logger = logging.getLogger(__name__)

DELIVER_TASK = "apps.monitoring.tasks.incident_notification_deliver_task"
ACK_SALT = "mahtqa.incident.ack"
ACK_MAX_AGE_S = 7 * 24 * 3600
DEFAULT_ONCALL = ["radiologist", "senior_radiologist", "admin"]
FOLD_LINE_EVERY = timedelta(minutes=10)


def monitor_settings_get() -> MonitorSettings:
    row, _ = MonitorSettings.objects.get_or_create(pk=1)
    return row


def oncall_levels(*, config: MonitorSettings | None = None) -> list[str]:
    """The on-call order: the admin's, else the review escalation chain, else the default."""
    config = config or monitor_settings_get()
    if config.oncall_levels:
        return [str(level) for level in config.oncall_levels]
    from apps.clinical.services.policy import routing_policy_current

    chain = list(routing_policy_current().escalation_chain or [])
    return chain or list(DEFAULT_ONCALL)


def incident_event_add(
    *, incident: Incident, kind: str, message: str, actor: str = "system",
    data: dict[str, Any] | None = None, now: datetime | None = None,
) -> IncidentEvent:  # fmt: skip
    return IncidentEvent.objects.create(
        incident=incident, at=now or timezone.now(), kind=kind, actor=actor[:150],
        message=message[:500], data=data or {},
    )  # fmt: skip


def _link(incident: Incident, *, study_ids: Iterable[int], issue_ids: Iterable[int]) -> None:
    study_ids, issue_ids = list(study_ids), list(issue_ids)
    if study_ids:
        incident.studies.add(*study_ids)
    if issue_ids:
        incident.issues.add(*issue_ids)


def incident_trigger(
    *, trigger: str, key: str, title: str, summary: str = "", severity: str | None = None,
    study_ids: Iterable[int] = (), issue_ids: Iterable[int] = (),
    data: dict[str, Any] | None = None, now: datetime | None = None,
) -> tuple[Incident, bool]:  # fmt: skip
    """Open an incident for ``trigger`` or fold into the active one with the same key.

    Returns ``(incident, opened)``. Safe to call from any number of workers at once: the
    partial unique constraint on active fingerprints makes a race fold, not duplicate."""
    if trigger not in Trigger.values or trigger == Trigger.MANUAL:
        raise InvalidInput("invalid_trigger", f"Unknown trigger {trigger!r}.")
    now = now or timezone.now()
    fingerprint = f"{trigger}:{key}"[:120]
    with transaction.atomic():
        active = (
            Incident.objects.select_for_update()
            .filter(fingerprint=fingerprint, status__in=ACTIVE_INCIDENT_STATUSES)
            .first()
        )
        if active is None:
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        trigger=trigger, fingerprint=fingerprint,
                        severity=severity or TRIGGER_SEVERITY[trigger], title=title[:200],
                        summary=summary, opened_at=now, last_seen_at=now,
                    )  # fmt: skip
            except IntegrityError:  # opened concurrently: fold into that one
                active = Incident.objects.select_for_update().get(
                    fingerprint=fingerprint, status__in=ACTIVE_INCIDENT_STATUSES
                )
        if active is not None:
            active.occurrences += 1
            active.last_seen_at = now
            active.save(update_fields=["occurrences", "last_seen_at"])
            if _fold_worth_a_line(active, title=title, data=data, now=now):
                incident_event_add(
                    incident=active, kind=IncidentEventKind.FOLDED, now=now, data=data,
                    message=f"Trigger repeated ({active.occurrences} in all): {title}",
                )  # fmt: skip
            _link(active, study_ids=study_ids, issue_ids=issue_ids)
            return active, False
        incident_event_add(
            incident=incident, kind=IncidentEventKind.OPENED, now=now, data=data,
            message=f"Opened by trigger {Trigger(trigger).label.lower()}: {title}",
        )  # fmt: skip
        _link(incident, study_ids=study_ids, issue_ids=issue_ids)
        _respond(incident, now=now)
    return incident, True


def _fold_worth_a_line(
    incident: Incident, *, title: str, data: dict[str, Any] | None, now: datetime
) -> bool:
    """A repeat is written to the timeline when it says something new (another title, or
    new evidence for a keyed alert) or FOLD_LINE_EVERY after the last line; otherwise
    only the count grows (a failing check repeats every minute)."""
    last = (
        incident.events.filter(kind__in=(IncidentEventKind.OPENED, IncidentEventKind.FOLDED))
        .order_by("-at", "-pk")
        .first()
    )
    if last is None or now - last.at >= FOLD_LINE_EVERY:
        return True
    if not last.message.endswith(title):
        return True
    return bool(data and data.get("key")) and data != last.data


def incident_open(
    *, user, title: str, summary: str = "", severity: str = IncidentSeverity.SEV2,
    trigger: str = Trigger.MANUAL, now: datetime | None = None,
) -> Incident:  # fmt: skip
    """An admin opens an incident by hand (or a drill, ``incident_open --trigger``)."""
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title_required", "Say what happened.", details={"title": "required"})
    if severity not in IncidentSeverity.values:
        raise InvalidInput("invalid_severity", f"Unknown severity {severity!r}.")
    if trigger not in Trigger.values:
        raise InvalidInput("invalid_trigger", f"Unknown trigger {trigger!r}.")
    now = now or timezone.now()
    actor = getattr(user, "username", "") or "system"
    with transaction.atomic():
        incident = Incident.objects.create(
            trigger=trigger, fingerprint=f"manual:{now.timestamp():.6f}:{actor}"[:120],
            severity=severity, title=title[:200], summary=summary, opened_at=now,
            last_seen_at=now, opened_by=user if getattr(user, "pk", None) else None,
        )  # fmt: skip
        incident_event_add(
            incident=incident, kind=IncidentEventKind.OPENED, actor=actor, now=now,
            message=f"Opened by {actor}: {title}",
        )  # fmt: skip
        _respond(incident, now=now)
    return incident


def _respond(incident: Incident, *, now: datetime) -> None:
    """The response plan at opening: automatic actions, then the first notification."""
    config = monitor_settings_get()
    if incident.trigger == Trigger.SAFETY_ALERT and config.auto_review_all_on_safety:
        from apps.monitoring.services.actions import incident_action_run

        try:
            with transaction.atomic():
                incident_action_run(incident=incident, action="review_all", user=None, now=now)
        except DomainError as exc:  # the incident and its cascade must stand regardless
            incident_event_add(
                incident=incident, kind=IncidentEventKind.ACTION, now=now,
                message=f"Automatic review-all failed ({exc.code}): {exc.message}",
            )  # fmt: skip
    _notify_step(incident, step=0, config=config, now=now)


def _notify_step(incident: Incident, *, step: int, config: MonitorSettings, now: datetime) -> bool:
    """Queue the message to on-call level ``step``; False past the top of the chain."""
    levels = oncall_levels(config=config)
    incident.oncall_step = min(step, max(len(levels) - 1, 0))
    if step >= len(levels):
        incident.escalate_at = None
        incident.save(update_fields=["oncall_step", "escalate_at"])
        incident_event_add(
            incident=incident, kind=IncidentEventKind.ESCALATED, now=now,
            message="Top of the on-call chain reached and still unacknowledged.",
        )  # fmt: skip
        return False
    notification, created = IncidentNotification.objects.get_or_create(
        incident=incident, step=step, defaults={"level": levels[step], "created_at": now}
    )
    if created:
        outbox_enqueue(
            task=DELIVER_TASK, kwargs={"notification_id": notification.pk},
            dedupe_key=f"incident-notification:{notification.pk}", new_key=True,
        )  # fmt: skip
    incident.escalate_at = now + timedelta(minutes=config.ack_timeout_minutes)
    incident.save(update_fields=["oncall_step", "escalate_at"])
    return True


def incidents_escalate_due(*, now: datetime | None = None) -> int:
    """Beat: unacknowledged incidents past their timer move to the next on-call level."""
    now = now or timezone.now()
    config = monitor_settings_get()
    moved = 0
    due = Incident.objects.filter(
        status=IncidentStatus.OPEN, acknowledged_at__isnull=True, escalate_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            incident = (
                Incident.objects.select_for_update()
                .filter(pk=pk, status=IncidentStatus.OPEN, escalate_at__lte=now)
                .first()
            )
            if incident is None:  # acknowledged or moved meanwhile
                continue
            step = incident.oncall_step + 1
            levels = oncall_levels(config=config)
            if _notify_step(incident, step=step, config=config, now=now):
                incident_event_add(
                    incident=incident, kind=IncidentEventKind.ESCALATED, now=now,
                    message=(
                        f"Not acknowledged within {config.ack_timeout_minutes:g} min: "
                        f"escalated to {levels[step]}."
                    ),
                )  # fmt: skip
                moved += 1
    return moved


def ack_token_make(*, incident_id: int, step: int) -> str:
    return signing.dumps({"i": incident_id, "s": step}, salt=ACK_SALT, compress=True)


def ack_token_read(*, token: str) -> tuple[int, int]:
    try:
        value = signing.loads(token, salt=ACK_SALT, max_age=ACK_MAX_AGE_S)
        return int(value["i"]), int(value["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFound("invalid_ack_link", "This acknowledgement link is not valid.") from exc


def incident_acknowledge(*, incident_id: int, actor: str, now: datetime | None = None) -> Incident:
    """Stop the cascade. Safe to run twice (the first acknowledgement stands)."""
    now = now or timezone.now()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise NotFound("not_found", "No such incident.")
        if incident.acknowledged_at is not None:
            return incident
        if incident.status not in ACTIVE_INCIDENT_STATUSES:
            raise Conflict("incident_closed", "This incident is no longer active.")
        incident.acknowledged_at, incident.acknowledged_by = now, actor[:150]
        incident.escalate_at = None
        if incident.status == IncidentStatus.OPEN:
            incident.status = IncidentStatus.ACKNOWLEDGED
        incident.save(update_fields=["acknowledged_at", "acknowledged_by", "escalate_at", "status"])
        minutes = (now - incident.opened_at).total_seconds() / 60
        incident_event_add(
            incident=incident, kind=IncidentEventKind.ACKNOWLEDGED, actor=actor, now=now,
            message=f"Acknowledged by {actor} after {minutes:.1f} min; escalation stopped.",
        )  # fmt: skip
    return incident


NEXT_STATUS = {
    IncidentStatus.OPEN: {IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED,
                          IncidentStatus.RESOLVED},
    IncidentStatus.ACKNOWLEDGED: {IncidentStatus.MITIGATED, IncidentStatus.RESOLVED},
    IncidentStatus.MITIGATED: {IncidentStatus.RESOLVED},
    IncidentStatus.RESOLVED: {IncidentStatus.CLOSED},
    IncidentStatus.CLOSED: set(),
}  # fmt: skip


def incident_status_set(
    *, incident_id: int, user, status: str, note: str = "", now: datetime | None = None
) -> Incident:
    """Move an incident on (mitigated, resolved). Closing needs the post-incident record."""
    now = now or timezone.now()
    actor = getattr(user, "username", "") or "system"
    if status == IncidentStatus.ACKNOWLEDGED:
        return incident_acknowledge(incident_id=incident_id, actor=actor, now=now)
    if status == IncidentStatus.CLOSED:
        raise InvalidInput("record_required", "Close an incident with its post-incident record.")
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise NotFound("not_found", "No such incident.")
        if status == incident.status:
            return incident
        if status not in NEXT_STATUS.get(incident.status, set()):
            raise Conflict(
                "invalid_transition", f"An incident {incident.status} cannot become {status}."
            )
        fields = ["status"]
        if incident.acknowledged_at is None:  # acting on it acknowledges it
            incident.acknowledged_at, incident.acknowledged_by = now, actor
            incident.escalate_at = None
            fields += ["acknowledged_at", "acknowledged_by", "escalate_at"]
        if status == IncidentStatus.RESOLVED:
            incident.resolved_at = now
            fields.append("resolved_at")
        incident.status = status
        incident.save(update_fields=fields)
        incident_event_add(
            incident=incident, kind=IncidentEventKind.STATUS, actor=actor, now=now,
            message=f"Marked {IncidentStatus(status).label.lower()}{': ' + note if note else ''}",
        )  # fmt: skip
    return incident


def incident_record_close(
    *, incident_id: int, user, cause: str, impact: str, actions_taken: str,
    follow_up: str = "", now: datetime | None = None,
) -> Incident:  # fmt: skip
    """Write the post-incident record and close a resolved incident."""
    now = now or timezone.now()
    missing = {
        k: "required" for k, v in {"cause": cause, "impact": impact,
                                   "actions_taken": actions_taken}.items() if not v.strip()
    }  # fmt: skip
    if missing:
        raise InvalidInput("record_incomplete", "Cause, impact and actions are needed.",
                           details=missing)  # fmt: skip
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise NotFound("not_found", "No such incident.")
        if incident.status != IncidentStatus.RESOLVED:
            raise Conflict("not_resolved", "Resolve the incident before closing it.")
        incident.cause, incident.impact = cause.strip(), impact.strip()
        incident.actions_taken, incident.follow_up = actions_taken.strip(), follow_up.strip()
        incident.status, incident.closed_at = IncidentStatus.CLOSED, now
        incident.save()
        incident_event_add(
            incident=incident, kind=IncidentEventKind.RECORD, now=now,
            actor=getattr(user, "username", "") or "system",
            message="Post-incident record written; incident closed.",
        )  # fmt: skip
    return incident


def incident_note_add(*, incident_id: int, user, text: str) -> IncidentEvent:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("note_required", "Write the note.", details={"text": "required"})
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("not_found", "No such incident.")
    return incident_event_add(
        incident=incident, kind=IncidentEventKind.NOTE, message=text,
        actor=getattr(user, "username", "") or "system",
    )  # fmt: skip


def incident_issue_link(*, incident_id: int, user, issue_id: int) -> Incident:
    """Link an issue (the cause, or a follow-up) to an incident. Safe to run twice."""
    from apps.issues.selectors import issue_exists

    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("not_found", "No such incident.")
    if not issue_exists(issue_id=issue_id):
        raise InvalidInput("unknown_issue", f"There is no issue #{issue_id}.",
                           details={"issue": "unknown"})  # fmt: skip
    if not incident.issues.filter(pk=issue_id).exists():
        incident.issues.add(issue_id)
        incident_event_add(
            incident=incident, kind=IncidentEventKind.LINKED,
            actor=getattr(user, "username", "") or "system", message=f"Issue #{issue_id} linked.",
        )  # fmt: skip
    return incident
