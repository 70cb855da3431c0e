"""The response plan's immediate actions: each one a button, audited, in the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.clinical.choices import AuditAction, ReviewPolicy
from apps.clinical.services.audit import audit_record
from apps.clinical.services.policy import routing_policy_current, routing_policy_update
from apps.clinical.services.recall import studies_recall_for_review
from apps.core.errors import Conflict, Forbidden, InvalidInput
from apps.monitoring.choices import ACTIVE_INCIDENT_STATUSES, IncidentAction, IncidentEventKind
from apps.monitoring.models import Incident
from apps.monitoring.services.incidents import incident_event_add

# Pause auto-release also recalls what was released this long before the incident opened.
RECALL_LOOKBACK = timedelta(hours=1)


def _review_all(incident: Incident, user) -> str:
    if routing_policy_current().review_policy == ReviewPolicy.ALL:
        return "Routing was already review-all; nothing changed."
    policy = routing_policy_update(
        user=user, review_policy=ReviewPolicy.ALL, note=f"INC-{incident.pk}: review all cases"
    )
    return f"Routing switched to review-all (policy version {policy.version})."


def _pause_release(incident: Incident, user, now: datetime) -> str:
    first = _review_all(incident, user)
    since = incident.opened_at - RECALL_LOOKBACK
    recalled, total = studies_recall_for_review(
        since=since, now=now,
        message=f"Recalled during INC-{incident.pk}: released while '{incident.title}'.",
    )  # fmt: skip
    rest = f" ({total - recalled} left: run it again)" if total > recalled else ""
    return (f"{first} {recalled} of {total} result(s) released since "
            f"{since:%Y-%m-%d %H:%M} recalled{rest}.")  # fmt: skip


def _rollback(incident: Incident, user) -> str:
    from apps.models.services.registry import model_version_rollback

    if user is None:
        raise Forbidden("forbidden", "A model rollback needs an admin.")
    version = model_version_rollback(user=user)
    return f"Model rolled back to {version}."


def incident_action_run(
    *, incident: Incident, action: str, user, ip: str | None = None,
    now: datetime | None = None,
) -> str:  # fmt: skip
    """Run one immediate action on an active incident (``user`` None: automatic)."""
    if action not in IncidentAction.values:
        raise InvalidInput("invalid_action", f"Unknown action {action!r}.")
    if incident.status not in ACTIVE_INCIDENT_STATUSES:
        raise Conflict("incident_closed", "This incident is no longer active.")
    now = now or timezone.now()
    # The action's own writes are atomic step by step (a policy version, a study recalled,
    # the registry's activation); none waits for the others' locks.
    if action == IncidentAction.REVIEW_ALL:
        outcome = _review_all(incident, user)
    elif action == IncidentAction.PAUSE_RELEASE:
        outcome = _pause_release(incident, user, now)
    else:
        outcome = _rollback(incident, user)
    with transaction.atomic():
        actor = getattr(user, "username", "") or "system (automatic)"
        incident_event_add(
            incident=incident, kind=IncidentEventKind.ACTION, actor=actor, now=now,
            message=f"{IncidentAction(action).label}: {outcome}", data={"action": action},
        )  # fmt: skip
        audit_record(
            actor=user, action=AuditAction.INCIDENT_ACTION, target_type="incident",
            target_id=str(incident.pk), ip=ip, details={"action": action, "outcome": outcome},
        )  # fmt: skip
    return outcome
