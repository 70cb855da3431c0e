"""Threshold administration: a new routing-policy version per change, audited, with a diff."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.clinical.choices import AuditAction
from apps.clinical.models import RoutingPolicy
from apps.clinical.services.audit import audit_record
from apps.clinical.services.escalation import notifications_current
from apps.clinical.services.policy import EDITABLE, routing_policy_current, routing_policy_update
from apps.core.errors import InvalidInput

TRACKED = (*EDITABLE, "notifications")


def _validate_notifications(value: Any) -> dict:
    if not isinstance(value, dict) or set(value) - {"emails", "webhook_url"}:
        raise InvalidInput(
            "invalid_policy", "The routing policy is not valid.",
            details={"notifications": "needs 'emails' and 'webhook_url' only"},
        )  # fmt: skip
    emails = value.get("emails") or {}
    webhook = (value.get("webhook_url") or "").strip()
    errors = {}
    if not isinstance(emails, dict) or any(
        not isinstance(v, list) or any("@" not in str(a) for a in v) for v in emails.values()
    ):
        errors["notifications"] = "emails must map a level to a list of addresses"
    if webhook and not webhook.startswith(("http://", "https://")):
        errors["notifications"] = "webhook_url must be an http(s) URL"
    if errors:
        raise InvalidInput("invalid_policy", "The routing policy is not valid.", details=errors)
    return {"emails": {k: list(v) for k, v in emails.items() if v}, "webhook_url": webhook}


def policy_values(policy: RoutingPolicy, notifications: dict | None = None) -> dict[str, Any]:
    values = {k: getattr(policy, k) for k in EDITABLE}
    values["notifications"] = notifications if notifications is not None else policy.notifications
    return values


def thresholds_update(
    *, user, changes: dict[str, Any], note: str = "", ip: str | None = None
) -> RoutingPolicy:
    """Store a new policy version with ``changes`` (only what differs), audited old -> new."""
    with transaction.atomic():
        current = routing_policy_current()
        old = policy_values(current, notifications_current())
        notif = changes.pop("notifications", None)
        if notif is not None:
            notif = _validate_notifications(notif)
        diff = {k: v for k, v in changes.items() if old.get(k) != v}
        if notif is not None and notif != old["notifications"]:
            diff["notifications"] = notif
        if not diff:
            raise InvalidInput("no_change", "Nothing changed.")
        core = {k: v for k, v in diff.items() if k != "notifications"}
        policy = routing_policy_update(user=user, note=note, **core)
        if "notifications" in diff:
            policy.notifications = diff["notifications"]
            policy.save(update_fields=["notifications"])
        audit_record(
            actor=user,
            action=AuditAction.THRESHOLDS_CHANGE,
            target_type="routing_policy",
            target_id=str(policy.version),
            ip=ip,
            details={
                "from_version": current.version,
                "to_version": policy.version,
                "changes": {k: {"old": old.get(k), "new": v} for k, v in diff.items()},
            },
        )
    return policy


def policy_history(*, limit: int = 50) -> list[dict[str, Any]]:
    """Versions newest first, each with who/when and its old -> new changes."""
    rows = list(
        RoutingPolicy.objects.select_related("created_by").order_by("-version")[: limit + 1]
    )
    out = []
    inherited = None
    # walk oldest -> newest to resolve inherited notifications
    resolved: dict[int, dict] = {}
    for p in reversed(rows):
        if p.notifications is not None:
            inherited = p.notifications
        resolved[p.version] = inherited or {"emails": {}, "webhook_url": ""}
    for i, p in enumerate(rows[:limit]):
        prev = rows[i + 1] if i + 1 < len(rows) else None
        changes = []
        if prev is not None:
            new_v = policy_values(p, resolved[p.version])
            old_v = policy_values(prev, resolved[prev.version])
            changes = [
                {"field": k, "old": old_v[k], "new": new_v[k]}
                for k in TRACKED
                if old_v[k] != new_v[k]
            ]
        out.append({"policy": p, "changes": changes})
    return out
