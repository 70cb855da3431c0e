"""The append-only audit trail: who, when, what, from where. Never PHI in ``details``."""

from __future__ import annotations

from typing import Any

from apps.clinical.models import AuditEvent


def audit_record(
    *,
    actor,
    action: str,
    target_type: str,
    target_id: str,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_username=getattr(actor, "username", "") or "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        ip=ip or None,
        details=details or {},
    )
