"""Delivering the incident cascade: e-mail to the level's people and the webhook.

Runs in a worker (outbox task). The notification row is locked while sending, so a
copy run twice sends once; each channel records when it went, and a channel that failed
(the SMTP server down while the webhook answered) is retried with back-off on its own.
Messages carry the incident's number, title, severity and links, never PHI (triggers
pass no patient data; studies are linked by public id on the page).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.clinical.services.escalation import escalation_audience, notifications_current
from apps.core.webhooks import webhook_post
from apps.monitoring.choices import IncidentEventKind
from apps.monitoring.models import IncidentNotification
from apps.monitoring.services.incidents import ack_token_make, incident_event_add

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A channel failed; the task retries it (a channel that went is not repeated)."""


def _links(notification: IncidentNotification) -> tuple[str, str]:
    base = getattr(settings, "MAHTQA_BASE_URL", "").rstrip("/")
    page = reverse("monitoring:incident", kwargs={"pk": notification.incident_id})
    token = ack_token_make(incident_id=notification.incident_id, step=notification.step)
    ack = reverse("monitoring:incident_ack_link", kwargs={"token": token})
    return f"{base}{page}", f"{base}{ack}"


def incident_notification_deliver(*, notification_id: int) -> IncidentNotification | None:
    with transaction.atomic():
        notification = (
            IncidentNotification.objects.select_for_update()
            .select_related("incident")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.sent_at is not None:
            return notification
        incident = notification.incident
        if incident.acknowledged_at is not None:  # someone is on it: nobody to page
            notification.error = "not sent: acknowledged before delivery"
            notification.sent_at = timezone.now()
            notification.save(update_fields=["error", "sent_at"])
            return notification
        targets = notifications_current()
        audience = escalation_audience(level=notification.level, targets=targets)
        page, ack = _links(notification)
        subject = f"[MAHT-QA {incident.severity.upper()}] INC-{incident.pk} {incident.title}"
        body = (
            f"Incident INC-{incident.pk} ({incident.get_trigger_display()}, "
            f"{incident.get_severity_display()}) needs {notification.level}.\n\n"
            f"{incident.summary}\n\nOpen: {page}\nAcknowledge (stops escalation): {ack}\n"
        )
        now = timezone.now()
        errors = []
        if audience.emails and notification.email_sent_at is None:
            try:
                send_mail(subject, body, None, list(audience.emails), fail_silently=False)
                notification.email_sent_at = now
            except Exception as exc:  # noqa: BLE001 - recorded; the webhook may still go
                errors.append(f"email:{type(exc).__name__}")
        url = str(targets.get("webhook_url") or "")
        if audience.webhook and notification.webhook_sent_at is None:
            payload = {
                "event": "incident", "incident": incident.pk, "title": incident.title,
                "severity": incident.severity, "trigger": incident.trigger,
                "level": notification.level, "step": notification.step,
                "url": page, "ack_url": ack,
            }  # fmt: skip
            try:
                webhook_post(url, payload, timeout=5)
                notification.webhook_sent_at = now
            except OSError as exc:
                errors.append(f"webhook:{type(exc).__name__}")
        notification.attempts += 1
        notification.recipients = list(audience.emails)
        notification.webhook = audience.webhook
        notification.error = " ".join(errors)[:200]
        done = (not audience.emails or notification.email_sent_at is not None) and (
            not audience.webhook or notification.webhook_sent_at is not None
        )
        if done:  # every channel delivered (or nothing to try): the step is complete
            notification.sent_at = now
            incident_event_add(
                incident=incident, kind=IncidentEventKind.NOTIFIED,
                message=f"Step {notification.step + 1} ({notification.level}): "
                + audience.summary(done=True),
            )  # fmt: skip
        notification.save(update_fields=[
            "attempts", "recipients", "webhook", "error", "sent_at", "email_sent_at",
            "webhook_sent_at",
        ])  # fmt: skip
    if notification.sent_at is None:
        raise DeliveryFailed(notification.error)
    return notification
