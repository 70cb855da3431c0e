"""Choices for monitoring: check states, incident triggers, severities and states."""

from __future__ import annotations

from django.db import models


class Rag(models.TextChoices):
    """A check's state: green (fine), amber (look soon), red (act now)."""

    GREEN = "green", "Green"
    AMBER = "amber", "Amber"
    RED = "red", "Red"


class Trigger(models.TextChoices):
    """The guide's escalation triggers (EmergencyResponseSystem) and a manual opening."""

    SYSTEM_DOWN = "system_down", "System down"
    SAFETY_ALERT = "safety_alert", "Safety alert"
    DATA_LOSS = "data_loss", "Data loss"
    SECURITY_BREACH = "security_breach", "Security breach"
    MANUAL = "manual", "Opened by hand"


class IncidentSeverity(models.TextChoices):
    SEV1 = "sev1", "SEV1 (critical: patient safety or service down)"
    SEV2 = "sev2", "SEV2 (major)"
    SEV3 = "sev3", "SEV3 (minor)"


# Default severity per trigger (the admin may change it on the incident).
TRIGGER_SEVERITY = {
    Trigger.SYSTEM_DOWN: IncidentSeverity.SEV1,
    Trigger.SAFETY_ALERT: IncidentSeverity.SEV1,
    Trigger.DATA_LOSS: IncidentSeverity.SEV1,
    Trigger.SECURITY_BREACH: IncidentSeverity.SEV1,
    Trigger.MANUAL: IncidentSeverity.SEV2,
}


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed (post-incident record written)"


ACTIVE_INCIDENT_STATUSES = (
    IncidentStatus.OPEN,
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.MITIGATED,
)


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    FOLDED = "folded", "Trigger repeated (folded in)"
    ACTION = "action", "Immediate action"
    NOTIFIED = "notified", "Notified"
    ESCALATED = "escalated", "Escalated"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    STATUS = "status", "Status changed"
    NOTE = "note", "Note"
    LINKED = "linked", "Linked"
    RECORD = "record", "Post-incident record"


class IncidentAction(models.TextChoices):
    """Immediate actions of the response plan; each one a button, audited."""

    REVIEW_ALL = "review_all", "Switch routing to review-all"
    PAUSE_RELEASE = "pause_release", "Pause auto-release"
    ROLLBACK_MODEL = "rollback_model", "Roll back the model"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"
